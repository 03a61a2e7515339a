package httpnorm

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTarget(t *testing.T) {
	var n Normalizer
	for _, tc := range []struct{ target, full, path string }{
		{"/", "/", "/"},
		{"/Products?Q=Running+Shoes", "/products?q=running shoes", "/products"},
		{"/static/%252e%252e/%252e%252e/etc/passwd", "/static/../../etc/passwd", "/etc/passwd"},
		{"/a/%2525252e%2525252e/b", "/a/%2e%2e/b", "/a/%2e%2e/b"}, // a fourth layer is left
		{"/a/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc/passwd", "/a/../../etc/passwd", "/etc/passwd"},
		{"/a/%e0%80%ae%e0%80%ae/b", "/a/../b", "/b"},
		{`/a\x5C..\x5Cb`, "/a/../b", "/b"},
		{"/app/..;/manager/html", "/app/..;/manager/html", "/manager/html"},
		{"/a//b/./c/", "/a//b/./c/", "/a/b/c/"},
		{"/a/b/..", "/a/b/..", "/a/"},
		{"/../../../x", "/../../../x", "/x"},
		{"/x?q=c%2B%2B", "/x?q=c++", "/x"},                               // '+' sent as %2B stays a plus
		{"/x?q=%u003cscript%u003e", "/x?q=<script>", "/x"},               // IIS
		{"/x?q=&#60;svg&#x2F;onload=1&#62", "/x?q=<svg/onload=1>", "/x"}, // HTML references
		{"/x?a=\\x22q\\x22", `/x?a="q"`, "/x"},                           // nginx's escapes
		{"/x%3Fa=1?b=%", "/x?a=1?b=%", "/x?a=1"},                         // a bad escape stays
		{"/%2e%2e%2f%2e%2e%2fetc", "/../../etc", "/etc"},
	} {
		full, path := n.Target([]byte(tc.target))
		assert.Equal(t, tc.full, string(full), tc.target)
		assert.Equal(t, tc.path, string(path), tc.target)
	}
}

func TestText(t *testing.T) {
	var n Normalizer
	assert.Equal(t, `get /?id=1' or '1'='1 http/1.1`, string(n.Text([]byte(`GET /?id=1%27+or+%271%27%3D%271 HTTP/1.1`))))
}

// Whatever comes in, normalizing neither panics nor grows the input.
func FuzzTarget(f *testing.F) {
	for _, s := range []string{"/a/%c0%af", "/%u0041?x=%2", "&#x;&#", `\x5`, "/..;/..;"} {
		f.Add(s)
	}
	var n Normalizer
	f.Fuzz(func(t *testing.T, s string) {
		full, path := n.Target([]byte(s))
		if len(full) > len(s)+1 || len(path) > len(full)+1 {
			t.Fatalf("%q grew to %q / %q", s, full, path)
		}
	})
}
