package scim

import (
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/scim/filter"
)

func TestCompileOnlyBindsValues(t *testing.T) {
	e, err := filter.Parse(`userName eq "x' OR 1=1 --" or displayName co "50%_off"`)
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := compile(e, userColumns)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sql, "1=1") || len(args) != 2 || args[1] != `%50\%\_off%` {
		t.Fatalf("compile = %q %v: values must be bound, LIKE wildcards escaped", sql, args)
	}
}
