package ebpfreceiver

import (
	"path"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// File attributes: file.* are OpenTelemetry semantic conventions.
const (
	attrFilePath       = "file.path"
	attrFileName       = "file.name"
	attrFileDirectory  = "file.directory"
	attrFileMode       = "file.mode"     // octal string, as semconv: "0644"
	attrFileOwnerID    = "file.owner.id" // chown: the new owner (string, as semconv)
	attrFileGroupID    = "file.group.id" // chown: the new group
	attrFileIntent     = "k8ssec.file.intent"
	attrFileFlags      = "k8ssec.file.flags"
	attrFileTargetPath = "k8ssec.file.target_path"
	attrFileInode      = "file.inode"                   // open: the opened file's (string, as semconv)
	attrFileDevice     = "k8ssec.file.device"           // open: "major:minor" of its filesystem
	attrFileResolved   = "k8ssec.file.path_resolved"    // open: file.path is the kernel's (false: the caller's string)
	attrFileRequested  = "k8ssec.file.requested_path"   // open: the caller's string, when it differs from file.path
	attrFileHardLink   = "k8ssec.file.watched_hardlink" // open: reported for its inode, a watched file's, under another name
	attrFileSensitive  = "k8ssec.file.sensitive_kind"   // open: release_agent, core_pattern, proc_mem, …: reported whatever file_prefixes
	attrFileTargetPid  = "k8ssec.file.target_pid"       // open of /proc/<pid>/mem or environ: that process (its tgid)
	attrSyscallResult  = "k8ssec.syscall.result"
)

// Open intents, as k8ssec.file.intent lists them.
const (
	intentRead     = "read"
	intentWrite    = "write"
	intentCreate   = "create"
	intentTruncate = "truncate"
)

// appendFile maps a file.* record; the process header is already there.
func appendFile(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event, strs *interner) {
	lr.SetEventName(ev.Kind.String())
	p := strs.get(ev.Path)
	attrs.PutStr(attrFilePath, p)
	attrs.PutStr(attrFileName, path.Base(p))
	attrs.PutStr(attrFileDirectory, path.Dir(p))
	attrs.PutInt(attrSyscallResult, ev.Result)
	lr.Body().SetStr(p)
	switch ev.Kind {
	case probe.KindFileOpen:
		if ev.Hook != probe.HookNone {
			attrs.PutStr(attrHook, ev.Hook.String())
		}
		attrs.PutBool(attrFileResolved, ev.PathResolved)
		if ev.PathResolved {
			attrs.PutStr(attrFileInode, strconv.FormatUint(ev.Inode, 10))
			attrs.PutStr(attrFileDevice, strconv.FormatUint(uint64(ev.Device>>20), 10)+":"+strconv.FormatUint(uint64(ev.Device&(1<<20-1)), 10))
			if string(ev.RawPath) != p {
				attrs.PutStr(attrFileRequested, strs.get(ev.RawPath))
			}
		}
		if ev.InodeMatch {
			attrs.PutBool(attrFileHardLink, true)
		}
		if ev.Sensitive != 0 {
			attrs.PutStr(attrFileSensitive, ev.Sensitive.String())
			if ev.TargetPid != 0 {
				attrs.PutInt(attrFileTargetPid, int64(ev.TargetPid))
			}
		}
		attrs.PutInt(attrFileFlags, int64(ev.FileFlags))
		putIntent(attrs.PutEmptySlice(attrFileIntent), ev.FileFlags)
		if creates(ev.FileFlags) {
			attrs.PutStr(attrFileMode, fileMode(ev.Mode))
		}
	case probe.KindFileRename, probe.KindFileLink, probe.KindFileSymlink:
		// rename: the new name; link: the existing file; symlink: what the
		// link points to (only when absolute: the kernel reads no other)
		if len(ev.TargetPath) > 0 {
			attrs.PutStr(attrFileTargetPath, strs.get(ev.TargetPath))
		}
		attrs.PutInt(attrFileFlags, int64(ev.FileFlags))
	case probe.KindFileChmod:
		attrs.PutStr(attrFileMode, fileMode(ev.Mode))
		attrs.PutInt(attrFileFlags, int64(ev.FileFlags))
	case probe.KindFileChown:
		if ev.Owner != probe.NoID {
			attrs.PutStr(attrFileOwnerID, strconv.FormatUint(uint64(ev.Owner), 10))
		}
		if ev.Group != probe.NoID {
			attrs.PutStr(attrFileGroupID, strconv.FormatUint(uint64(ev.Group), 10))
		}
		attrs.PutInt(attrFileFlags, int64(ev.FileFlags))
	case probe.KindFileUnlink:
		attrs.PutInt(attrFileFlags, int64(ev.FileFlags))
	}
}

// putIntent lists what an open with flags means to do to the file.
func putIntent(s pcommon.Slice, flags uint32) {
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		s.AppendEmpty().SetStr(intentRead)
	case unix.O_WRONLY:
		s.AppendEmpty().SetStr(intentWrite)
	case unix.O_RDWR:
		s.AppendEmpty().SetStr(intentRead)
		s.AppendEmpty().SetStr(intentWrite)
	}
	if creates(flags) {
		s.AppendEmpty().SetStr(intentCreate)
	}
	if flags&unix.O_TRUNC != 0 {
		s.AppendEmpty().SetStr(intentTruncate)
	}
}

// creates says whether an open may create a file: O_CREAT, or O_TMPFILE
// (which includes O_DIRECTORY's bit, hence the full comparison).
func creates(flags uint32) bool {
	return flags&unix.O_CREAT != 0 || flags&unix.O_TMPFILE == unix.O_TMPFILE
}

// fileMode formats permission bits (with setuid, setgid and sticky) as
// semconv's file.mode: octal, at least four digits ("0644", "4755").
func fileMode(mode uint32) string {
	b := []byte{'0', '0', '0', '0', '0'}
	o := strconv.AppendUint(b[:0], uint64(mode&0o7777), 8)
	if len(o) >= 4 {
		return string(o)
	}
	copy(b[4-len(o):], o) // o is b's prefix: copy moves it right, then zero-fill the head
	for i := range 4 - len(o) {
		b[i] = '0'
	}
	return string(b[:4])
}
