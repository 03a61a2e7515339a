package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ldCachePath is the dynamic loader's cache of library names (ldconfig writes it).
const ldCachePath = "/etc/ld.so.cache"

// libraryDirs are where the dynamic loader looks when the cache does not know a library.
var libraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib",
}

// ResolveBinary returns the file a uprobe's binary names: an absolute path
// as it is, or a library name (no slash: "libc.so.6", "libssl.so.3", or
// "libssl" for any libssl.so*) found the way the dynamic loader finds it,
// in ld.so.cache and then in the standard directories.
func ResolveBinary(name string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			return "", fmt.Errorf("binary %q: a path must be absolute (or give a library name, without a slash)", name)
		}
		st, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("binary %s: %w", name, err)
		}
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("binary %s: not a regular file", name)
		}
		return name, nil
	}
	if name == "" {
		return "", fmt.Errorf("binary: empty name")
	}
	if data, err := os.ReadFile(ldCachePath); err == nil {
		if p := lookupLdCache(data, name, cacheArchFlag()); p != "" {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	for _, dir := range libraryDirs {
		for _, pattern := range []string{name, name + ".so", name + ".so.*"} {
			matches, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, m := range matches {
				if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
					return m, nil
				}
			}
		}
	}
	return "", fmt.Errorf("library %q: not in %s nor in %s (give the library's absolute path instead)",
		name, ldCachePath, strings.Join(libraryDirs, ", "))
}

// matchesLibrary says whether a cache key (a soname, "libc.so.6") is what
// name asks for: the name itself, or name.so, or name.so.<version>.
func matchesLibrary(key, name string) bool {
	return key == name || key == name+".so" || strings.HasPrefix(key, name+".so.")
}

// ld.so.cache's "new" format (glibc's dl-cache.h): a 48-byte header, then
// nlibs entries of 24 bytes (flags, key and value as string offsets from
// the header's start, osversion, hwcap).
const (
	ldCacheMagicNew  = "glibc-ld.so.cache1.1"
	ldCacheMagicOld  = "ld.so-1.7.0"
	ldCacheHeaderLen = 48
	ldCacheEntryLen  = 24
	ldFlagELFLibc6   = 0x0003
	ldFlagTypeMask   = 0x00ff
	ldFlagArchMask   = 0xff00
	ldFlagX8664      = 0x0300
	ldFlagAArch64    = 0x0a00
)

func cacheArchFlag() int32 {
	if runtime.GOARCH == "arm64" {
		return ldFlagAArch64
	}
	return ldFlagX8664
}

// lookupLdCache returns the path of the first library of this architecture
// whose name matches, or "". A cache it cannot read is a cache without it.
func lookupLdCache(data []byte, name string, arch int32) string {
	if bytes.HasPrefix(data, []byte(ldCacheMagicOld)) {
		// The old format first (12-byte entries after a 16-byte header), then the new one, 8-aligned.
		if len(data) < 16 {
			return ""
		}
		n := int(binary.LittleEndian.Uint32(data[12:]))
		off := 16 + n*12
		off = (off + 7) &^ 7
		if off < 0 || off > len(data) {
			return ""
		}
		data = data[off:]
	}
	if !bytes.HasPrefix(data, []byte(ldCacheMagicNew)) || len(data) < ldCacheHeaderLen {
		return ""
	}
	le := binary.LittleEndian
	n := int(le.Uint32(data[20:]))
	str := func(off uint32) string {
		if int(off) >= len(data) {
			return ""
		}
		s := data[off:]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			return string(s[:i])
		}
		return ""
	}
	for i := range n {
		e := ldCacheHeaderLen + i*ldCacheEntryLen
		if e+ldCacheEntryLen > len(data) {
			break
		}
		flags := int32(le.Uint32(data[e:]))
		if flags&ldFlagTypeMask != ldFlagELFLibc6 || flags&ldFlagArchMask != arch {
			continue
		}
		if matchesLibrary(str(le.Uint32(data[e+4:])), name) {
			return str(le.Uint32(data[e+8:]))
		}
	}
	return ""
}
