package inference

import "net/http"

// Route is one route of the model API, as the gateway lists it for the
// server, which registers it beside the routes of its other surfaces: a
// request is routed once, by the server's mux, straight to its handler.
// The handler finds the request's id in its context
// (steward.RequestIDFrom), where the server's edge put it, and in the
// response's x-request-id, which the edge set.
type Route struct {
	// Pattern is an http.ServeMux pattern: "METHOD /path", or "/path" for
	// a route that takes every method.
	Pattern string
	Handler http.Handler
	// OwnsBody is set when the handler bounds the request's body itself,
	// the model API taking larger prompts than the server's cap: the
	// server then caps it not, and gives it the model API's body timeout,
	// for a pattern with wildcards as for one without.
	OwnsBody bool
}
