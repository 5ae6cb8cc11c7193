// Package redact hides the credentials a URL may carry (a userinfo password,
// a token in the query or the fragment) before the URL is logged or put into
// an error.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a redacted value.
const Mask = "REDACTED"

// secretParams are query (and fragment) parameter names whose values are
// credentials, compared case-insensitively after removing '-' and '_'.
var secretParams = map[string]bool{
	"token": true, "accesstoken": true, "idtoken": true, "refreshtoken": true, "authtoken": true,
	"apikey": true, "key": true, "appkey": true, "applicationkey": true,
	"sig": true, "signature": true, "xamzsignature": true, "xamzcredential": true, "xamzsecuritytoken": true,
	"xgoogsignature": true, "xgoogcredential": true,
	"secret": true, "clientsecret": true, "password": true, "passwd": true, "pwd": true, "pass": true,
	"auth": true, "authorization": true, "credential": true, "credentials": true, "code": true,
}

// secretParam says whether a parameter's value is a credential: a known
// name, or any name mentioning token, secret, password or signature.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	n = strings.NewReplacer("-", "", "_", "", ".", "").Replace(n)
	if secretParams[n] {
		return true
	}
	for _, s := range []string{"token", "secret", "password", "signature", "apikey"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// URL returns s with its credentials replaced by Mask: the userinfo
// password, and the values of query and fragment parameters such as token=,
// access_token=, api_key=, key= or sig=. A string that is not an absolute
// URL with a scheme (a file path) is returned unchanged unless it has a
// query; one that does not parse is replaced as a whole, since it cannot
// be told apart.
func URL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Mask + " (unparsable URL)"
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
			changed = true
		}
	}
	if q, ok := redactParams(u.RawQuery); ok {
		u.RawQuery = q
		changed = true
	}
	if u.Fragment != "" {
		if f, ok := redactParams(u.EscapedFragment()); ok {
			u.Fragment, u.RawFragment = "", ""
			if uf, err := url.PathUnescape(f); err == nil {
				u.Fragment, u.RawFragment = uf, f
			}
			changed = true
		}
	}
	if !changed {
		return s
	}
	return u.String()
}

// redactParams masks the secret values of an a=b&c=d list, keeping the
// order and the encoding of everything else.
func redactParams(raw string) (string, bool) {
	if raw == "" || !strings.Contains(raw, "=") {
		return raw, false
	}
	parts := strings.Split(raw, "&")
	changed := false
	for i, p := range parts {
		name, value, found := strings.Cut(p, "=")
		if !found || value == "" {
			continue
		}
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if secretParam(name) {
			k, _, _ := strings.Cut(p, "=")
			parts[i] = k + "=" + Mask
			changed = true
		}
	}
	return strings.Join(parts, "&"), changed
}

// String masks every URL-looking word of s (anything with "://"), for
// messages that embed URLs, such as the errors of net/http and net/url.
func String(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		return s
	}
	out := s
	for _, w := range words {
		if !strings.Contains(w, "://") {
			continue
		}
		// Quotes and trailing punctuation around a URL in a message.
		trimmed := strings.Trim(w, "\"'`()[]<>,;:")
		if r := URL(trimmed); r != trimmed {
			out = strings.Replace(out, trimmed, r, 1)
		}
	}
	return out
}

// Error wraps err so that its message has its URLs masked (see String);
// errors.Is and errors.As still see err. A *url.Error is copied with its
// URL masked. Nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, msg: String(err.Error())}
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap returns the original error, for errors.Is and errors.As. Its
// message is not masked: print the redactedError, not what it unwraps to.
func (e *redactedError) Unwrap() error { return e.err }
