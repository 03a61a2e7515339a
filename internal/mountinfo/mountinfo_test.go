package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/sys/fs/cgroup`:           "/sys/fs/cgroup",
		`/mnt/a\040b`:              "/mnt/a b",
		`/mnt/tab\011nl\012`:       "/mnt/tab\tnl\n",
		`/mnt/back\134slash`:       `/mnt/back\slash`,
		`/mnt/not\09octal`:         `/mnt/not\09octal`,
		`/mnt/short\04`:            `/mnt/short\04`,
		`/mnt/\040lead\040\040two`: "/mnt/ lead  two",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
