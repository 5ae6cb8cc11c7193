package planstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...).
type S3Config struct {
	// Endpoint is host[:port], or a URL whose scheme says TLS (https,
	// the default) or not (http). Empty: s3.amazonaws.com.
	Endpoint string
	Bucket   string
	// Prefix is prepended to every object name ("fleet/plans").
	Prefix string
	Region string
	// AccessKey and SecretKey are static credentials; both empty: the
	// AWS chain (environment, shared files, instance role).
	AccessKey string
	SecretKey string
}

// S3 stores plans as objects PREFIX/KEY.json in a bucket.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
	desc   string
}

// NewS3 returns the S3 store of cfg. It does not reach the bucket: the
// first Put or Get does.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("plan store: s3: no bucket")
	}
	endpoint, secure := cfg.Endpoint, true
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("plan store: s3 endpoint: %w", err)
		}
		switch u.Scheme {
		case "http":
			secure = false
		case "https":
		default:
			return nil, fmt.Errorf("plan store: s3 endpoint %s: scheme %q (want http or https)", u.Host, u.Scheme)
		}
		endpoint = u.Host
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
	})
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupAuto,
	})
	if err != nil {
		return nil, fmt.Errorf("plan store: s3 client for %s: %w", endpoint, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	desc := "s3://" + path.Join(cfg.Bucket, prefix) + " at " + scheme + "://" + endpoint
	return &S3{c: c, bucket: cfg.Bucket, prefix: prefix, desc: desc}, nil
}

func (s *S3) String() string { return s.desc }

func (s *S3) object(key string) string {
	if s.prefix == "" {
		return key + ".json"
	}
	return s.prefix + "/" + key + ".json"
}

// Put uploads data under its key (an object with that key holds the same
// bytes, so it is written again only if missing).
func (s *S3) Put(ctx context.Context, data []byte) (string, error) {
	key := Key(data)
	name := s.object(key)
	if _, err := s.c.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); err == nil {
		return key, nil
	}
	_, err := s.c.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/json"})
	if err != nil {
		return "", fmt.Errorf("upload plan %s to %s: %w", key, s, err)
	}
	return key, nil
}

// Get downloads the object stored under key and checks it.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.readErr(key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, s.readErr(key, err)
	}
	if err := verify(s, key, data); err != nil {
		return nil, err
	}
	return data, nil
}

func (s *S3) readErr(key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchBucket":
		return fmt.Errorf("plan %s: %w (%s: %v)", key, ErrNotFound, s, err)
	}
	return fmt.Errorf("download plan %s from %s: %w", key, s, err)
}
