// Package sharedcomponent hands out one component per configuration, so that a
// receiver serving both a logs and a metrics pipeline is made once and reads its
// source (BPF ring buffers, log files) once. The collector's own sharedcomponent
// package is internal to it.
package sharedcomponent

import "sync"

// Registry maps a configuration to the component made for it. The zero value is
// ready to use.
type Registry[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

// Get returns the component made for key, making it with create the first time.
// create receives forget, which the component calls when it shuts down so that
// the next pipeline built from the same configuration makes a new one.
func (r *Registry[K, V]) Get(key K, create func(forget func()) (V, error)) (V, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.m[key]; ok {
		return c, nil
	}
	c, err := create(func() {
		r.mu.Lock()
		delete(r.m, key)
		r.mu.Unlock()
	})
	if err != nil {
		return c, err
	}
	if r.m == nil {
		r.m = map[K]V{}
	}
	r.m[key] = c
	return c, nil
}
