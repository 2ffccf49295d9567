package storetest_test

import (
	"testing"

	"github.com/stewardhq/steward/internal/store/storetest"
)

// BenchmarkOpenSQLite and BenchmarkOpenPostgres measure what a test pays
// for its database: a copy of the migrated template, opened.
func BenchmarkOpenSQLite(b *testing.B) {
	for b.Loop() {
		storetest.OpenSQLite(b)
	}
}

func BenchmarkOpenPostgres(b *testing.B) {
	for b.Loop() {
		storetest.OpenPostgres(b)
	}
}
