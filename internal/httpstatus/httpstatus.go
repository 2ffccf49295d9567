// Package httpstatus remembers the status a handler answered with, for
// access logs and metrics.
package httpstatus

import "net/http"

// Writer is a ResponseWriter that remembers the first status written:
// Status is 0 until the handler writes a header or a body. Unwrap lets
// http.ResponseController reach the writer underneath (to flush a stream).
type Writer struct {
	http.ResponseWriter
	Status int
}

func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
