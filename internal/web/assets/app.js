// Progressive enhancement only: every page works without this script.
// - data-copy="id" buttons copy the named field (a key's secret);
// - forms with data-confirm ask before they are sent;
// - a form with data-autosubmit is sent at once (single sign-on's last
//   step; without the script, its button sends it).
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
var auto = document.querySelector("form[data-autosubmit]");
if (auto) auto.submit();
