package rules

import (
	"strings"
	"testing"
)

// icontains answers as the plain scan with strings.EqualFold at every
// position does, including the runes that fold to ASCII (K to k, ſ to s).
func TestIcontainsAsEqualFoldScan(t *testing.T) {
	naive := func(s, sub string) bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if strings.EqualFold(s[i:i+len(sub)], sub) {
				return true
			}
		}
		return len(sub) == 0
	}
	hays := []string{"", "a", "/Search?Q=UNION+select", "\u212aey", "ke\u017Fs", "café", "x<SCRIPT>", "ab\xffcd", "jNdI:LDAP", "sss", "kkk"}
	subs := []string{"", "a", "union", "UNION SELECT", "k", "key", "s", "ss", "<script", "é", "\xff", "jndi:ldap", "cd", "select"}
	for _, s := range hays {
		for _, sub := range subs {
			if got, want := icontains(s, sub), naive(s, sub); got != want {
				t.Errorf("icontains(%q, %q) = %v, want %v", s, sub, got, want)
			}
		}
	}
}

func FuzzIcontains(f *testing.F) {
	f.Add("/Search?Q=UNION+select", "union")
	f.Add("\u212aey", "k")
	f.Fuzz(func(t *testing.T, s, sub string) {
		want := len(sub) == 0
		for i := 0; !want && i+len(sub) <= len(s); i++ {
			want = strings.EqualFold(s[i:i+len(sub)], sub)
		}
		if got := icontains(s, sub); got != want {
			t.Fatalf("icontains(%q, %q) = %v, want %v", s, sub, got, want)
		}
	})
}
