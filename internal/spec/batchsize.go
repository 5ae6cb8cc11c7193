package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// BatchSize is a parsed Phase.BatchSize: either a count of clusters or a
// percentage of the phase's clusters.
type BatchSize struct {
	// Count is the number of clusters per batch; 0 when Hundredths is set.
	Count int
	// Hundredths is the percentage in hundredths of a percent (1000 = 10%,
	// 250 = 2.5%); 0 when Count is set. Integer so sizes never suffer from
	// floating-point rounding.
	Hundredths int
}

const batchSizeHelp = "must be a count like 25 or a percentage like 10%"

// ParseBatchSize parses "25" or "10%" (up to two decimals: "2.5%").
// A count must be at least 1; a percentage more than 0 and at most 100.
func ParseBatchSize(s string) (BatchSize, error) {
	t := strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(t, "%"); ok {
		pct = strings.TrimSpace(pct)
		whole, frac, _ := strings.Cut(pct, ".")
		if whole == "" || !digits(whole) || !digits(frac) || len(frac) > 2 || len(whole) > 3 {
			return BatchSize{}, errors.New(batchSizeHelp)
		}
		w, _ := strconv.Atoi(whole)
		f, _ := strconv.Atoi((frac + "00")[:2])
		h := w*100 + f
		if h <= 0 || h > 10000 {
			return BatchSize{}, fmt.Errorf("percentage must be more than 0%% and at most 100%%, got %q", s)
		}
		return BatchSize{Hundredths: h}, nil
	}
	if t == "" || !digits(t) {
		return BatchSize{}, errors.New(batchSizeHelp)
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return BatchSize{}, fmt.Errorf("count %q is too large", s)
	}
	if n < 1 {
		return BatchSize{}, fmt.Errorf("count must be at least 1, got %q", s)
	}
	return BatchSize{Count: n}, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Of returns the batch size for a phase of n clusters: the count (at most
// n), or the percentage of n rounded up; at least 1 when n > 0.
func (b BatchSize) Of(n int) int {
	if n <= 0 {
		return 0
	}
	size := b.Count
	if b.Hundredths > 0 {
		size = int((int64(n)*int64(b.Hundredths) + 9999) / 10000)
	}
	return min(max(size, 1), n)
}

// String formats the size as written in a spec: "25" or "10%", "2.5%".
func (b BatchSize) String() string {
	if b.Hundredths == 0 {
		return strconv.Itoa(b.Count)
	}
	s := strconv.Itoa(b.Hundredths / 100)
	if f := b.Hundredths % 100; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", f), "0")
	}
	return s + "%"
}
