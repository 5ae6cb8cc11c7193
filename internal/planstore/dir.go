package planstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir stores plans as files under a directory: KEY[:2]/KEY.json, each
// written to a temporary file and renamed into place, so a reader sees a
// whole plan or none.
type Dir struct {
	Path string
}

// NewDir returns the directory store at path, creating the directory.
func NewDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("plan store: empty directory path")
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("plan store: create %s: %w", path, err)
	}
	return &Dir{Path: path}, nil
}

func (d *Dir) String() string { return "dir:" + d.Path }

func (d *Dir) file(key string) string {
	return filepath.Join(d.Path, key[:2], key+".json")
}

// Put writes data under its key, unless a document with that key is there.
func (d *Dir) Put(_ context.Context, data []byte) (string, error) {
	key := Key(data)
	path := d.file(key)
	if _, err := os.Stat(path); err == nil {
		return key, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), key+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("write plan %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write plan %s: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("sync plan %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write plan %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write plan %s: %w", key, err)
	}
	return key, nil
}

// Get reads the document stored under key and checks it.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(d.file(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("plan %s: %w (%s)", key, ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("read plan %s from %s: %w", key, d, err)
	}
	if err := verify(d, key, data); err != nil {
		return nil, err
	}
	return data, nil
}
