// Progressive enhancement only: every page works without this script.
// - data-copy="id" buttons copy the named field (a key's secret);
// - forms with data-confirm ask before they are sent;
// - a form with data-autosubmit is sent at once (single sign-on's last
//   step; without the script, its button sends it);
// - a link with data-follow is followed at once (single sign-on's way to
//   the identity provider, which the pages' form-action policy keeps a
//   form's redirect from taking).
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b) return;
  var field = document.getElementById(b.getAttribute("data-copy"));
  field.select();
  var done = function () { b.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
document.addEventListener("DOMContentLoaded", function () {
  var a = document.querySelector("a[data-follow]");
  if (a) window.location.assign(a.href);
  var f = document.querySelector("form[data-autosubmit]");
  if (f) f.submit();
});
