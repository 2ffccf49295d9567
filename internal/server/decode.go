package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
)

// decode reads a JSON request body into v. Text that steward.TextRule
// refuses, unknown fields, malformed JSON, wrong types, trailing data and
// an empty body are KindInvalid errors that name the field; a body over
// the size cap is KindTooLarge.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	if err := steward.CheckJSONText([]string{"body"}, body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if dec.More() || dec.Decode(&struct{}{}) != io.EOF {
			return steward.Invalid([]string{"body"}, "the body must hold a single JSON value")
		}
		return nil
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return steward.Invalid([]string{"body"}, "a JSON body is required")
	case errors.As(err, &syntaxErr):
		return steward.Invalid([]string{"body"}, "the body is not valid JSON (at byte %d): %v", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return steward.Invalid([]string{"body"}, "the body is not valid JSON: it ends too early")
	case errors.As(err, &typeErr):
		loc := []string{"body"}
		if typeErr.Field != "" {
			loc = append(loc, strings.Split(typeErr.Field, ".")...)
		}
		return steward.Invalid(loc, "must be %s, not a JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return steward.Invalid([]string{"body", name}, "unknown field %q", name)
	default:
		return steward.Invalid([]string{"body"}, "%v", err)
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "an integer"
	case "float64", "float32":
		return "a number"
	default:
		return "a " + kind
	}
}

// decodeError turns a failure to read a body into the error decode gives.
func decodeError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return steward.Errorf(steward.KindTooLarge, "the request body is larger than %d bytes", maxErr.Limit)
	}
	return steward.Invalid([]string{"body"}, "the body could not be read: %v", err)
}

// field is a decoded string field of a body, nil when it was not sent.
type field struct {
	name  string
	value *string
}

// missing returns an error for each field that was not sent, located under
// at (e.g. ["body"], or ["body", "0"] for an item of a list).
func missing(at []string, fields ...field) []*steward.Error {
	var errs []*steward.Error
	for _, f := range fields {
		if f.value == nil {
			errs = append(errs, steward.Invalid(append(slices.Clip(at), f.name), "%s is required", f.name))
		}
	}
	return errs
}

// optionalDate parses the body's field name, a date such as 2027-01-31,
// when it was sent: nil when it was not, and its error added to errs when
// it is not a date.
func optionalDate(name string, value *string, errs []*steward.Error) (*time.Time, []*steward.Error) {
	if value == nil {
		return nil, errs
	}
	d, err := keys.Date(*value)
	if err != nil {
		return nil, append(errs, steward.Invalid([]string{"body", name}, "%s must be a date such as 2027-01-31", name))
	}
	return &d, errs
}
