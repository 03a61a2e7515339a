package response

import "sync"

// The registered Killers, oldest first. More than one ebpf receiver may run
// in a collector (ebpf/a, ebpf/b); they name the same node's processes, so any
// one will do.
var (
	mu      sync.Mutex
	killers []*entry
)

type entry struct{ k Killer }

// Register makes k the Killer of this collector until unregister is called
// (at the registering component's Shutdown). Calling unregister again does
// nothing.
func Register(k Killer) (unregister func()) {
	e := &entry{k}
	mu.Lock()
	killers = append(killers, e)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for i, other := range killers {
			if other == e {
				killers = append(killers[:i:i], killers[i+1:]...)
				return
			}
		}
	}
}

// Lookup returns a registered Killer, or nil when none runs: the processor
// asks per alert, since receivers start after processors and stop before them.
func Lookup() Killer {
	mu.Lock()
	defer mu.Unlock()
	if len(killers) == 0 {
		return nil
	}
	return killers[0].k
}
