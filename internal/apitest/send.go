package apitest

import (
	"io"
	"net/http"
	"testing"
)

// Send sends a request to url with the given body and headers (name,
// value, name, value, ...) and returns it with its response and the whole
// response body.
func Send(t testing.TB, client *http.Client, method, url string, body io.Reader, headers ...string) (*http.Request, *http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, resp, b
}
