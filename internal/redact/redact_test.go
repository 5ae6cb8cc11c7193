package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"http://127.0.0.1:8089/v1/clusters", "http://127.0.0.1:8089/v1/clusters"},
		{"/etc/fleet/inventory.yaml", "/etc/fleet/inventory.yaml"},
		{"https://alice:s3cret@inv.example.com/v1/clusters", "https://alice:REDACTED@inv.example.com/v1/clusters"},
		{"https://alice@inv.example.com/x", "https://alice@inv.example.com/x"},
		{"https://inv.example.com/v1?token=abc&env=prod", "https://inv.example.com/v1?token=REDACTED&env=prod"},
		{"https://inv.example.com/v1?env=prod&access_token=abc", "https://inv.example.com/v1?env=prod&access_token=REDACTED"},
		{"https://inv.example.com/v1?api_key=abc&API-KEY=def&key=k&sig=s", "https://inv.example.com/v1?api_key=REDACTED&API-KEY=REDACTED&key=REDACTED&sig=REDACTED"},
		{"https://b.s3.amazonaws.com/inv.json?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F1&x-id=GetObject", "https://b.s3.amazonaws.com/inv.json?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&x-id=GetObject"},
		{"https://inv.example.com/v1?my_session_token=abc", "https://inv.example.com/v1?my_session_token=REDACTED"},
		{"https://inv.example.com/cb#access_token=abc&state=1", "https://inv.example.com/cb#access_token=REDACTED&state=1"},
		{"https://u:p@inv.example.com/?token=t", "https://u:REDACTED@inv.example.com/?token=REDACTED"},
		{"https://inv.example.com/v1?token=", "https://inv.example.com/v1?token="},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestURLUnparsableIsMaskedWhole(t *testing.T) {
	got := URL("http://u:pa ss@[::1")
	if strings.Contains(got, "pa ss") || !strings.Contains(got, Mask) {
		t.Fatalf("URL = %q", got)
	}
}

func TestStringAndError(t *testing.T) {
	_, perr := url.Parse("https://alice:s3cret@inv.example.com:bad/v1?token=abc")
	if perr == nil {
		t.Fatal("want a parse error")
	}
	err := Error(fmt.Errorf("inventory: %w", perr))
	for _, secret := range []string{"s3cret", "abc"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows %q", err, secret)
		}
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Error("errors.As lost the *url.Error")
	}

	msg := `Get "https://inv.example.com/v1?token=abc&env=prod": dial tcp: connection refused`
	got := String(msg)
	want := `Get "https://inv.example.com/v1?token=REDACTED&env=prod": dial tcp: connection refused`
	if got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
	plain := errors.New("no urls here")
	if Error(plain).Error() != plain.Error() {
		t.Error("plain message changed")
	}
}
