package ebpfreceiver

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Shell and uprobe attributes. No semantic convention covers either; the
// typed line is not process.command_line, which names the shell's own.
const (
	attrShellCommand          = "k8ssec.shell.command"
	attrShellCommandTruncated = "k8ssec.shell.command.truncated"
	attrUprobeBinary          = "k8ssec.uprobe.binary"
	attrUprobeSymbol          = "k8ssec.uprobe.symbol"
	attrUprobeReturn          = "k8ssec.uprobe.return"
	attrUprobeArgs            = "k8ssec.uprobe.args"            // ints and strings, in the order configured
	attrUprobeArgsTruncated   = "k8ssec.uprobe.args.truncated"  // a string argument was cut
	attrUprobeArgsUnreadable  = "k8ssec.uprobe.args.unreadable" // a string argument could not be read (reported as "")
)

// appendShell maps a process.shell_command record.
func appendShell(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event) {
	lr.SetEventName(eventShellCommand)
	cmd := string(ev.Command)
	attrs.PutStr(attrShellCommand, cmd)
	if ev.CommandTruncated {
		attrs.PutBool(attrShellCommandTruncated, true)
	}
	lr.Body().SetStr(cmd)
}

// appendUprobe maps a process.uprobe record: which probe fired, and its
// arguments as configured. The body reads as the call: symbol(42, "text").
func appendUprobe(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event, ups []probe.Uprobe) {
	lr.SetEventName(eventUprobe)
	if int(ev.UprobeIndex) >= len(ups) {
		return // not one of ours: the probes and the records come from the same Load
	}
	u := ups[ev.UprobeIndex]
	attrs.PutStr(attrUprobeBinary, u.Binary)
	attrs.PutStr(attrUprobeSymbol, u.Symbol)
	attrs.PutBool(attrUprobeReturn, u.Return)
	args := attrs.PutEmptySlice(attrUprobeArgs)
	args.EnsureCapacity(len(u.Args))
	var body strings.Builder
	body.WriteString(u.Symbol)
	if u.Return {
		body.WriteString("() = ")
	} else {
		body.WriteByte('(')
	}
	for i, t := range u.Args {
		if i > 0 {
			body.WriteString(", ")
		}
		switch t {
		case probe.UprobeArgString:
			s := string(ev.UprobeStrs[i])
			args.AppendEmpty().SetStr(s)
			body.WriteString(strconv.Quote(s))
			if ev.UprobeStrTruncated(i) {
				attrs.PutBool(attrUprobeArgsTruncated, true)
			}
			if ev.UprobeStrFault(i) {
				attrs.PutBool(attrUprobeArgsUnreadable, true)
			}
		default:
			v := int64(ev.UprobeArgs[i])
			args.AppendEmpty().SetInt(v)
			body.WriteString(strconv.FormatInt(v, 10))
		}
	}
	if !u.Return {
		body.WriteByte(')')
	}
	lr.Body().SetStr(body.String())
}
