package ebpfreceiver

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// procInfo is what the cache keeps of a process: enough to name it in its
// exit event and in its children's exec events.
type procInfo struct {
	exe         string
	commandLine string
	execID      string // "" when seeded from /proc
}

// procCache maps a pid (tgid) to its last exec (a new exec, a new
// *procInfo: batches tell execs apart by pointer), bounded (least recently used
// out). Only the reader goroutine touches it.
type procCache struct {
	lru *simplelru.LRU[uint32, *procInfo]
}

func newProcCache(size int) *procCache {
	lru, _ := simplelru.NewLRU[uint32, *procInfo](size, nil) // size >= 1, checked by Validate
	return &procCache{lru: lru}
}

func (c *procCache) get(pid uint32) (*procInfo, bool) { return c.lru.Get(pid) }
func (c *procCache) put(pid uint32, p *procInfo)      { c.lru.Add(pid, p) }
func (c *procCache) remove(pid uint32)                { c.lru.Remove(pid) }
func (c *procCache) len() int                         { return c.lru.Len() }

// seed fills the cache from /proc (root: a host path mounted elsewhere in a
// pod). Kernel threads, which have no executable, are skipped; so are
// processes that exit while we look.
func (c *procCache) seed(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		dir := root + "/" + e.Name()
		exe, err := os.Readlink(dir + "/exe")
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		c.put(uint32(pid), &procInfo{
			exe:         strings.TrimSuffix(exe, " (deleted)"),
			commandLine: joinArgs(cmdline),
		})
	}
}

// joinArgs turns NUL-separated arguments into a space-separated command line.
func joinArgs(nulSeparated []byte) string {
	b := bytes.TrimRight(nulSeparated, "\x00")
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}
