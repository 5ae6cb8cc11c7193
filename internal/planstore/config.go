package planstore

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fleet-rollout/fleet/internal/redact"
)

// Environment variables that configure the plan store (Open).
const (
	// EnvStore is where plans are kept: dir:/path (or an absolute path),
	// or s3://bucket/prefix.
	EnvStore = "FLEET_PLAN_STORE"
	// EnvS3Endpoint is the S3-compatible endpoint: host:port, or a URL
	// (http:// for no TLS). Empty: AWS S3.
	EnvS3Endpoint = "FLEET_PLAN_STORE_S3_ENDPOINT"
	// EnvS3Region is the bucket's region (optional).
	EnvS3Region = "FLEET_PLAN_STORE_S3_REGION"
	// EnvS3AccessKey and EnvS3SecretKey are static credentials; unset, the
	// AWS chain applies (AWS_ACCESS_KEY_ID..., shared files, instance role).
	EnvS3AccessKey = "FLEET_PLAN_STORE_S3_ACCESS_KEY"
	EnvS3SecretKey = "FLEET_PLAN_STORE_S3_SECRET_KEY"
)

// Open returns the store that spec names (EnvStore's value), reading the
// S3 settings through getenv; a directory is created. Credentials appear in
// no error and no String.
func Open(spec string, getenv func(string) string) (Store, error) {
	dir, s3, err := parse(spec, getenv)
	switch {
	case err != nil:
		return nil, err
	case s3 != nil:
		return NewS3(*s3)
	}
	return NewDir(dir)
}

// Check says whether spec names a store, touching nothing.
func Check(spec string) error {
	_, _, err := parse(spec, func(string) string { return "" })
	return err
}

// parse reads spec: a directory, or an S3 configuration.
func parse(spec string, getenv func(string) string) (string, *S3Config, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return "", nil, fmt.Errorf("%s is empty: want dir:/path or s3://bucket/prefix", EnvStore)
	case strings.HasPrefix(spec, "dir:"):
		p := strings.TrimPrefix(spec, "dir:")
		if !filepath.IsAbs(p) {
			return "", nil, fmt.Errorf("%s=%s: the directory must be an absolute path", EnvStore, spec)
		}
		return filepath.Clean(p), nil, nil
	case filepath.IsAbs(spec):
		return filepath.Clean(spec), nil, nil
	case strings.HasPrefix(spec, "s3://"):
		rest := strings.TrimPrefix(spec, "s3://")
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" || strings.ContainsAny(bucket, "@:?#") {
			return "", nil, fmt.Errorf("%s: s3://bucket/prefix wants a bucket name (credentials go in %s and %s)", EnvStore, EnvS3AccessKey, EnvS3SecretKey)
		}
		return "", &S3Config{
			Endpoint:  getenv(EnvS3Endpoint),
			Region:    getenv(EnvS3Region),
			AccessKey: getenv(EnvS3AccessKey),
			SecretKey: getenv(EnvS3SecretKey),
			Bucket:    bucket,
			Prefix:    prefix,
		}, nil
	}
	return "", nil, fmt.Errorf("%s=%q: want dir:/path (an absolute path) or s3://bucket/prefix", EnvStore, redact.String(spec))
}
