package ebpfreceiver

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Socket attributes: network.* and server.* are OpenTelemetry semantic
// conventions (server.address is a unix socket's name there too); the rest
// has none.
const (
	attrSocketFamily   = "k8ssec.network.socket.family"   // packet, inet, inet6, unix, …
	attrSocketType     = "k8ssec.network.socket.type"     // raw, packet, stream, dgram, seqpacket
	attrSocketProtocol = "k8ssec.network.socket.protocol" // as the socket has it (packet: the ethertype, network order)
	attrUnixAbstract   = "k8ssec.network.unix.abstract"   // server.address is an abstract name ("@…")
	attrUnixResolved   = "k8ssec.network.unix.path_resolved"
	attrDupOldFd       = "k8ssec.process.fd_dup.old_fd"
	attrDupNewFd       = "k8ssec.process.fd_dup.new_fd"
	networkTransportUx = "unix"
)

var socketFamilies = map[uint16]string{
	unix.AF_UNIX: "unix", unix.AF_INET: "inet", unix.AF_INET6: "inet6", unix.AF_PACKET: "packet",
	unix.AF_NETLINK: "netlink", unix.AF_VSOCK: "vsock", unix.AF_BLUETOOTH: "bluetooth", unix.AF_CAN: "can",
	unix.AF_XDP: "xdp",
}

var socketTypes = [...]string{
	unix.SOCK_STREAM: "stream", unix.SOCK_DGRAM: "dgram", unix.SOCK_RAW: "raw", unix.SOCK_RDM: "rdm",
	unix.SOCK_SEQPACKET: "seqpacket", unix.SOCK_DCCP: "dccp", unix.SOCK_PACKET: "packet",
}

func socketFamily(f uint16) string {
	if s, ok := socketFamilies[f]; ok {
		return s
	}
	return "other"
}

func socketType(t uint32) string {
	if int(t) < len(socketTypes) && socketTypes[t] != "" {
		return socketTypes[t]
	}
	return "other"
}

// unixName is a unix socket's name as ss prints it: an abstract name behind
// "@", its NULs as "@" too.
func unixName(d *probe.SocketDetail) string {
	if !d.Abstract {
		return string(d.Path)
	}
	return "@" + strings.ReplaceAll(string(d.Path), "\x00", "@")
}

// appendUnixConnect maps a network.connect to a unix socket.
func appendUnixConnect(attrs pcommon.Map, ev *probe.Event) {
	attrs.PutStr(attrNetTransport, networkTransportUx)
	attrs.PutStr(attrServerAddress, unixName(&ev.Socket))
	attrs.PutBool(attrUnixResolved, ev.Socket.Resolved)
	if ev.Socket.Abstract {
		attrs.PutBool(attrUnixAbstract, true)
	}
	if ev.Socket.Type != 0 {
		attrs.PutStr(attrSocketType, socketType(ev.Socket.Type))
	}
	attrs.PutInt(attrSocketFd, int64(ev.Fd))
	attrs.PutInt(attrSyscallResult, ev.Result)
}

// putInetKind adds network.type and network.transport for an inet socket.
func putInetKind(attrs pcommon.Map, ev *probe.Event) {
	switch ev.Family {
	case unix.AF_INET:
		attrs.PutStr(attrNetType, networkTypeIPv4)
	case unix.AF_INET6:
		attrs.PutStr(attrNetType, networkTypeIPv6)
	default:
		return
	}
	if t := transport(ev.Protocol); t != "" {
		attrs.PutStr(attrNetTransport, t)
	}
}

// appendSocket maps a network.socket record: a packet or raw socket created.
func appendSocket(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event) {
	lr.SetEventName(eventNetSocket)
	fam, typ := socketFamily(ev.Family), socketType(ev.Socket.Type)
	attrs.PutStr(attrSocketFamily, fam)
	attrs.PutStr(attrSocketType, typ)
	attrs.PutInt(attrSocketProtocol, int64(ev.Protocol))
	putInetKind(attrs, ev)
	attrs.PutInt(attrSyscallResult, ev.Result)
	lr.Body().SetStr(fam + " " + typ)
}

// appendFdDup maps a process.fd_dup record: a socket duplicated onto fd 0-2.
func appendFdDup(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event) {
	lr.SetEventName(eventFdDup)
	attrs.PutInt(attrDupOldFd, int64(ev.Socket.OldFd))
	attrs.PutInt(attrDupNewFd, int64(ev.Socket.NewFd))
	attrs.PutStr(attrSyscallName, ev.Socket.DupOp.String())
	attrs.PutStr(attrSocketFamily, socketFamily(ev.Family))
	attrs.PutStr(attrSocketType, socketType(ev.Socket.Type))
	attrs.PutInt(attrSyscallResult, ev.Result)
	lr.Body().SetStr(socketFamily(ev.Family))
	if ev.Family != unix.AF_INET && ev.Family != unix.AF_INET6 {
		return
	}
	putInetKind(attrs, ev)
	attrs.PutStr(attrNetPeerAddress, ipString(ev.Family, &ev.RemoteAddr))
	attrs.PutInt(attrNetPeerPort, int64(ev.RemotePort))
	attrs.PutStr(attrNetLocalAddress, ipString(ev.Family, &ev.LocalAddr))
	attrs.PutInt(attrNetLocalPort, int64(ev.LocalPort))
}

// socketAttributes is how many attributes appendSocket, appendFdDup and
// appendUnixConnect put at most (ownAttributes).
func socketAttributes(kind probe.Kind) int {
	switch kind {
	case probe.KindNetSocket:
		return 6
	case probe.KindFdDup:
		return 12
	}
	return 7 // a unix connect
}
