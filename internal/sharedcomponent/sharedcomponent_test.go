package sharedcomponent

import (
	"errors"
	"testing"
)

type comp struct{ forget func() }

func TestOnePerKeyUntilForgotten(t *testing.T) {
	var reg Registry[string, *comp]
	made := 0
	create := func(forget func()) (*comp, error) {
		made++
		return &comp{forget: forget}, nil
	}
	a, _ := reg.Get("cfg", create)
	b, _ := reg.Get("cfg", create)
	if a != b || made != 1 {
		t.Fatalf("two Gets of one key made %d components (same: %v)", made, a == b)
	}
	if c, _ := reg.Get("other", create); c == a || made != 2 {
		t.Fatalf("another key shares the component")
	}
	a.forget()
	if c, _ := reg.Get("cfg", create); c == a || made != 3 {
		t.Fatalf("after forget the old component is handed out again")
	}
}

func TestFailedCreateIsNotKept(t *testing.T) {
	var reg Registry[string, *comp]
	boom := errors.New("boom")
	if _, err := reg.Get("cfg", func(func()) (*comp, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	c, err := reg.Get("cfg", func(f func()) (*comp, error) { return &comp{forget: f}, nil })
	if err != nil || c == nil {
		t.Fatalf("a failed create was kept: %v %v", c, err)
	}
}
