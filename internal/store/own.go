package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock beside the SQLite database, in the data
// directory, that keeps a second server off the database.
const LockFile = SQLiteFile + ".lock"

// errLocked is lockFile's error when another process holds the lock.
var errLocked = errors.New("locked by another process")

// OwnSQLite makes this process the one server of the SQLite database in
// dir: it takes an exclusive lock (flock) on LockFile, which the operating
// system releases when the process ends, also by kill -9, and writes its
// pid there for the error another process shows. It fails, naming the
// database, when another process holds the lock. release gives it back.
func OwnSQLite(dir string) (release func(), err error) {
	if dir == "" {
		return nil, fmt.Errorf("no data directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the SQLite database's lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		defer f.Close()
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("lock the SQLite database's lock %s: %w", path, err)
		}
		holder := "another process"
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf("another process (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("the SQLite database %s is in use: %s holds its lock %s. One server owns an SQLite database: stop the other one, or give this one another --data-dir (several servers share a PostgreSQL database)",
			filepath.Join(dir, SQLiteFile), holder, path)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
