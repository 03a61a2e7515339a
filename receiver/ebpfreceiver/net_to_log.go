package ebpfreceiver

import (
	"net/netip"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Network attributes: OpenTelemetry semantic conventions but for the
// project's tcp states.
const (
	attrServerAddress      = "server.address"
	attrServerPort         = "server.port"
	attrClientAddress      = "client.address"
	attrClientPort         = "client.port"
	attrNetLocalAddress    = "network.local.address"
	attrNetLocalPort       = "network.local.port"
	attrNetPeerAddress     = "network.peer.address"
	attrNetPeerPort        = "network.peer.port"
	attrNetTransport       = "network.transport" // tcp, udp
	attrNetType            = "network.type"      // ipv4, ipv6
	attrTCPOldState        = "k8ssec.network.tcp.old_state"
	attrTCPNewState        = "k8ssec.network.tcp.new_state"
	attrSocketFd           = "k8ssec.network.socket.fd"
	networkTypeIPv4        = "ipv4"
	networkTypeIPv6        = "ipv6"
	networkTransportTCP    = "tcp"
	networkTransportUDP    = "udp"
	networkTransportSCTP   = "sctp"
	networkTransportICMP   = "icmp"
	networkTransportRawIP  = "raw"
	networkTransportOthers = ""
)

// tcpStates names the kernel's TCP states (include/net/tcp_states.h).
var tcpStates = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
	7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}

func tcpState(s int32) string {
	if s > 0 && int(s) < len(tcpStates) && tcpStates[s] != "" {
		return tcpStates[s]
	}
	return "UNKNOWN"
}

func transport(protocol uint16) string {
	switch protocol {
	case unix.IPPROTO_TCP:
		return networkTransportTCP
	case unix.IPPROTO_UDP:
		return networkTransportUDP
	case unix.IPPROTO_SCTP:
		return networkTransportSCTP
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		return networkTransportICMP
	case unix.IPPROTO_RAW:
		return networkTransportRawIP
	}
	return networkTransportOthers
}

// ipString formats a record's address for its family; v4-mapped IPv6
// addresses keep their IPv6 form, as the socket has it.
func ipString(family uint16, a *[16]byte) string {
	if family == unix.AF_INET {
		return netip.AddrFrom4([4]byte(a[:4])).String()
	}
	return netip.AddrFrom16(*a).String()
}

// appendNet maps a network.* record; the process header is already there.
func appendNet(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event) {
	lr.SetEventName(ev.Kind.String())
	if ev.Kind == probe.KindNetConnect && ev.Family == unix.AF_UNIX {
		appendUnixConnect(attrs, ev)
		lr.Body().SetStr(unixName(&ev.Socket))
		return
	}
	if ev.Family == unix.AF_INET6 {
		attrs.PutStr(attrNetType, networkTypeIPv6)
	} else {
		attrs.PutStr(attrNetType, networkTypeIPv4)
	}
	if t := transport(ev.Protocol); t != "" {
		attrs.PutStr(attrNetTransport, t)
	}
	local, remote := ipString(ev.Family, &ev.LocalAddr), ipString(ev.Family, &ev.RemoteAddr)
	switch ev.Kind {
	case probe.KindNetConnect:
		attrs.PutStr(attrServerAddress, remote)
		attrs.PutInt(attrServerPort, int64(ev.RemotePort))
		if ev.LocalPort != 0 {
			attrs.PutStr(attrClientAddress, local)
			attrs.PutInt(attrClientPort, int64(ev.LocalPort))
		}
	case probe.KindNetAccept:
		attrs.PutStr(attrServerAddress, local)
		attrs.PutInt(attrServerPort, int64(ev.LocalPort))
		attrs.PutStr(attrClientAddress, remote)
		attrs.PutInt(attrClientPort, int64(ev.RemotePort))
	case probe.KindNetBind, probe.KindNetListen:
		attrs.PutStr(attrServerAddress, local)
		attrs.PutInt(attrServerPort, int64(ev.LocalPort))
	case probe.KindNetTCPState:
		attrs.PutStr(attrNetLocalAddress, local)
		attrs.PutInt(attrNetLocalPort, int64(ev.LocalPort))
		attrs.PutStr(attrNetPeerAddress, remote)
		attrs.PutInt(attrNetPeerPort, int64(ev.RemotePort))
		attrs.PutStr(attrTCPOldState, tcpState(ev.OldState))
		attrs.PutStr(attrTCPNewState, tcpState(ev.NewState))
		return // no syscall
	}
	if ev.Hook != probe.HookNone {
		// From a kernel function, not a syscall: no result, and fd -1 (no fd
		// this process named), so that a rule on fds 0-2 cannot read a 0.
		attrs.PutStr(attrHook, ev.Hook.String())
		attrs.PutInt(attrSocketFd, -1)
		return
	}
	attrs.PutInt(attrSocketFd, int64(ev.Fd))
	attrs.PutInt(attrSyscallResult, ev.Result)
}
