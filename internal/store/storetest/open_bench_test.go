package storetest_test

import (
	"testing"

	"github.com/stewardhq/steward/internal/store/storetest"
)

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
