package rules

import (
	"strings"

	"github.com/google/cel-go/cel"
)

// attrType is how a condition sees an attribute.
type attrType int

const (
	typeString attrType = iota
	typeInt
	typeDouble
	typeBool
	typeStringList
	typeMap
	typeList
	// typeDyn is an attribute the vocabulary does not type (vocabulary.go):
	// it reads as whatever the event carries, null when absent.
	typeDyn
)

func (t attrType) cel() *cel.Type {
	switch t {
	case typeInt:
		return cel.IntType
	case typeDouble:
		return cel.DoubleType
	case typeBool:
		return cel.BoolType
	case typeStringList:
		// list(dyn), not list(string): CEL checks a declared element type on
		// every element at every read, which costs more than most conditions.
		return cel.ListType(cel.DynType)
	case typeMap:
		return cel.MapType(cel.StringType, cel.DynType)
	case typeList:
		return cel.ListType(cel.DynType)
	case typeDyn:
		return cel.DynType
	default:
		return cel.StringType
	}
}

// attributeTypes is the event model's vocabulary as rules read it: every name a
// receiver writes (DESIGN.md's event model), with its type. A condition may
// name anything else too (vocabulary.go): it is read dynamically, with a
// warning at load naming the closest name here, since a typo would never
// match. Receivers that add attributes add them here.
var attributeTypes = map[string]attrType{
	// Record fields.
	"event.name":     typeString,
	"event.severity": typeString,
	"event.body":     typeString,

	// Identity and Kubernetes (resource or record).
	"user.name":                      typeString,
	"user.id":                        typeString,
	"k8s.namespace.name":             typeString,
	"k8s.pod.name":                   typeString,
	"k8s.pod.uid":                    typeString,
	"k8s.node.name":                  typeString,
	"k8s.container.name":             typeString,
	"k8s.deployment.name":            typeString,
	"k8s.cluster.name":               typeString,
	"container.id":                   typeString,
	"container.name":                 typeString,
	"container.image.name":           typeString,
	"container.image.tags":           typeStringList,
	"container.runtime.name":         typeString,
	"k8s.replicaset.name":            typeString,
	"k8s.daemonset.name":             typeString,
	"k8s.statefulset.name":           typeString,
	"k8s.job.name":                   typeString,
	"k8s.replicationcontroller.name": typeString,
	// The pod's labels and annotations as maps, gathered from the
	// k8s.pod.label.<key> attributes (semconv): k8s.pod.label["app.kubernetes.io/name"].
	// k8s.pod.label.team reads the one attribute (vocabulary.go's openFamilies).
	"k8s.pod.label":                 typeMap,
	"k8s.pod.annotation":            typeMap,
	"k8ssec.process.host":           typeBool,
	"k8ssec.k8s.pod.pending":        typeBool,
	"k8ssec.k8s.pod.pending_reason": typeString,

	// Network and HTTP.
	"client.address":            typeString,
	"client.port":               typeInt,
	"server.address":            typeString,
	"server.port":               typeInt,
	"source.address":            typeString,
	"source.port":               typeInt,
	"destination.address":       typeString,
	"destination.port":          typeInt,
	"network.transport":         typeString,
	"network.type":              typeString,
	"network.protocol.name":     typeString,
	"user_agent.original":       typeString,
	"http.request.method":       typeString,
	"http.response.status_code": typeInt,
	"http.request.body.size":    typeInt,
	"http.response.body.size":   typeInt,
	"url.path":                  typeString,
	"url.query":                 typeString,
	"url.scheme":                typeString,
	"url.original":              typeString,

	// HTTP access logs (the ingress_log receiver).
	"network.protocol.version":         typeString,
	"http.request.size":                typeInt,
	"http.response.size":               typeInt,
	"http.server.request.duration":     typeDouble,
	"k8s.service.name":                 typeString,
	"k8s.service.port":                 typeString,
	"k8s.ingress.name":                 typeString,
	"log.record.original":              typeString,
	"k8ssec.parse.error":               typeString,
	"k8ssec.http.referer":              typeString,
	"k8ssec.http.forwarded_for":        typeString,
	"k8ssec.http.request.id":           typeString,
	"k8ssec.upstream.name":             typeString,
	"k8ssec.upstream.alternative_name": typeString,
	"k8ssec.upstream.address":          typeString,
	"k8ssec.upstream.status_code":      typeInt,
	"k8ssec.upstream.duration":         typeDouble,
	"k8ssec.upstream.response.size":    typeInt,
	"k8ssec.ingress.router":            typeString,
	"k8ssec.envoy.response_flags":      typeString,
	"k8ssec.url.normalized":            typeString, // the target decoded once for every rule (internal/httpnorm)
	"k8ssec.url.path.normalized":       typeString, // its path, dot segments resolved

	// Processes and files (the ebpf receiver).
	"process.pid":                    typeInt,
	"process.parent_pid":             typeInt,
	"process.executable.path":        typeString,
	"process.executable.name":        typeString,
	"process.command_line":           typeString,
	"process.command_args":           typeStringList,
	"process.working_directory":      typeString,
	"process.user.id":                typeInt,
	"process.user.name":              typeString,
	"process.real_user.id":           typeInt,
	"process.group.id":               typeInt,
	"process.exit.code":              typeInt,
	"process.parent.executable.path": typeString,
	"process.parent.executable.name": typeString,
	"process.parent.command_line":    typeString,
	"process.real_group.id":          typeInt,
	"thread.id":                      typeInt,
	// No semantic convention for these yet, hence the project prefix.
	"k8ssec.process.comm":                   typeString,
	"k8ssec.process.exit.signal":            typeInt,
	"k8ssec.process.exit.core_dumped":       typeBool,
	"k8ssec.process.command_args.truncated": typeBool,
	"k8ssec.linux.cgroup.id":                typeInt,
	"k8ssec.linux.mnt_ns":                   typeInt,
	"k8ssec.linux.pid_ns":                   typeInt,
	"k8ssec.process.start_time":             typeInt,
	"k8ssec.process.requested_path":         typeString,
	"k8ssec.process.tty":                    typeBool,
	"k8ssec.process.vpid":                   typeInt,
	"file.path":                             typeString,
	"file.name":                             typeString,
	"file.directory":                        typeString,
	"log.file.name":                         typeString,
	"log.file.path":                         typeString,

	// Files, network, privilege and isolation (the ebpf receiver).
	"file.mode":                         typeString,
	"file.owner.id":                     typeString,
	"file.group.id":                     typeString,
	"k8ssec.file.target_path":           typeString,
	"file.inode":                        typeString,
	"k8ssec.file.device":                typeString,
	"k8ssec.file.path_resolved":         typeBool,
	"k8ssec.file.requested_path":        typeString,
	"k8ssec.file.watched_hardlink":      typeBool,
	"network.local.address":             typeString,
	"network.peer.address":              typeString,
	"k8ssec.network.tcp.old_state":      typeString,
	"k8ssec.network.tcp.new_state":      typeString,
	"k8ssec.syscall.name":               typeString,
	"k8ssec.mount.source":               typeString,
	"k8ssec.mount.target":               typeString,
	"k8ssec.mount.fstype":               typeString,
	"k8ssec.ptrace.request":             typeString,
	"k8ssec.bpf.prog_name":              typeString,
	"k8ssec.memfd.name":                 typeString,
	"k8ssec.syscall.result":             typeInt,
	"k8ssec.file.flags":                 typeInt,
	"network.local.port":                typeInt,
	"network.peer.port":                 typeInt,
	"k8ssec.network.socket.fd":          typeInt,
	"k8ssec.privilege.old.real_id":      typeInt,
	"k8ssec.privilege.old.effective_id": typeInt,
	"k8ssec.privilege.new.real_id":      typeInt,
	"k8ssec.privilege.new.effective_id": typeInt,
	"k8ssec.privilege.new.saved_id":     typeInt,
	"k8ssec.capabilities.effective":     typeInt,
	"k8ssec.capabilities.permitted":     typeInt,
	"k8ssec.capabilities.inheritable":   typeInt,
	"k8ssec.capabilities.target_pid":    typeInt,
	"k8ssec.namespace.fd":               typeInt,
	"k8ssec.namespace.flags":            typeInt,
	"k8ssec.mount.flags":                typeInt,
	"k8ssec.module.fd":                  typeInt,
	"k8ssec.module.size":                typeInt,
	"k8ssec.module.flags":               typeInt,
	"k8ssec.ptrace.target_pid":          typeInt,
	"k8ssec.bpf.prog_type":              typeInt,
	"k8ssec.bpf.insn_count":             typeInt,
	"k8ssec.memfd.flags":                typeInt,
	"k8ssec.file.intent":                typeStringList,
	"k8ssec.namespace.types":            typeStringList,
	"k8ssec.enforcement.action":         typeString,
	"k8ssec.enforcement.rule":           typeString,
	"k8ssec.process.fileless":           typeBool,
	"k8ssec.process.drift":              typeBool,
	"k8ssec.process.exec_id":            typeString,
	"k8ssec.process.parent.exec_id":     typeString,
	"k8ssec.process.child.pid":          typeInt,
	// Sockets and sensitive files (the ebpf receiver's network.socket,
	// process.fd_dup, network.connect to unix sockets, file.open).
	"k8ssec.network.socket.family":      typeString,
	"k8ssec.network.socket.type":        typeString,
	"k8ssec.network.socket.protocol":    typeInt,
	"k8ssec.network.unix.abstract":      typeBool,
	"k8ssec.network.unix.path_resolved": typeBool,
	"k8ssec.process.fd_dup.old_fd":      typeInt,
	"k8ssec.process.fd_dup.new_fd":      typeInt,
	"k8ssec.file.sensitive_kind":        typeString,
	"k8ssec.file.target_pid":            typeInt,
	// What the security_rules processor did for a rule's action (on its
	// alerts, which a downstream security_rules may read).
	"k8ssec.response.action":     typeString,
	"k8ssec.response.result":     typeString,
	"k8ssec.response.latency":    typeDouble,
	"k8ssec.response.target_pid": typeInt,
	"k8ssec.response.error":      typeString,

	// Shell commands and uprobes (the ebpf receiver's uprobe object).
	"k8ssec.shell.command":           typeString,
	"k8ssec.shell.command.truncated": typeBool,
	"k8ssec.uprobe.binary":           typeString,
	"k8ssec.uprobe.symbol":           typeString,
	"k8ssec.uprobe.return":           typeBool,
	"k8ssec.uprobe.args":             typeList, // ints and strings, as the probe's args say
	"k8ssec.uprobe.args.truncated":   typeBool,
	"k8ssec.uprobe.args.unreadable":  typeBool,

	// The kernel-function hooks (privilege.escalation; file.open and network.* no syscall saw).
	"k8ssec.hook":                   typeString,
	"k8ssec.privilege.old.group_id": typeInt,
	"k8ssec.privilege.new.group_id": typeInt,
	"k8ssec.privilege.exec":         typeBool,
	"k8ssec.syscall.id":             typeInt,
	"k8ssec.syscall.compat":         typeBool,

	// Kubernetes audit (the k8s_audit receiver).
	"k8s.audit.id":                            typeString,
	"k8s.audit.stage":                         typeString,
	"k8s.audit.level":                         typeString,
	"k8s.audit.verb":                          typeString,
	"k8s.audit.request_uri":                   typeString,
	"k8s.audit.source_ips":                    typeStringList,
	"k8s.audit.user.groups":                   typeStringList,
	"k8s.audit.user.extra":                    typeMap,
	"k8s.audit.impersonated_user.name":        typeString,
	"k8s.audit.impersonated_user.groups":      typeStringList,
	"k8s.audit.object.resource":               typeString,
	"k8s.audit.object.subresource":            typeString,
	"k8s.audit.object.name":                   typeString,
	"k8s.audit.object.uid":                    typeString,
	"k8s.audit.object.api_group":              typeString,
	"k8s.audit.object.api_version":            typeString,
	"k8s.audit.object.resource_version":       typeString,
	"k8s.audit.response.status":               typeString,
	"k8s.audit.response.reason":               typeString,
	"k8s.audit.response.message":              typeString,
	"k8s.audit.request_received_time":         typeString,
	"k8s.audit.request_object":                typeMap,
	"k8s.audit.response_object":               typeMap,
	"k8s.audit.annotations":                   typeMap,
	"k8s.audit.authorization.decision":        typeString,
	"k8s.audit.authorization.reason":          typeString,
	"k8s.audit.pod_security.enforce_policy":   typeString,
	"k8s.audit.pod_security.audit_violations": typeString,
	"k8s.audit.pod_security.exempt":           typeString,

	// Kubernetes Events (the kube_events receiver). The involved object is
	// k8s.object.*; for pods also k8s.pod.name/uid, labels and workload.
	"k8s.event.name":                 typeString,
	"k8s.event.uid":                  typeString,
	"k8s.event.type":                 typeString,
	"k8s.event.reason":               typeString,
	"k8s.event.action":               typeString,
	"k8s.event.count":                typeInt,
	"k8s.event.first_time":           typeString,
	"k8s.event.last_time":            typeString,
	"k8s.event.time":                 typeString,
	"k8s.event.reporting_controller": typeString,
	"k8s.event.reporting_instance":   typeString,
	"k8s.event.source.component":     typeString,
	"k8s.event.source.host":          typeString,
	"k8s.event.related.kind":         typeString,
	"k8s.event.related.name":         typeString,
	"k8s.object.kind":                typeString,
	"k8s.object.name":                typeString,
	"k8s.object.namespace":           typeString,
	"k8s.object.uid":                 typeString,
	"k8s.object.field_path":          typeString,
	"k8s.object.api_version":         typeString,

	// The k8s.object.change records of the ingress-objects example (k8sobjects
	// through its transform, docs/components.md): the watch event's type, a
	// ConfigMap's data, an Ingress's snippet annotations (a map, and as one string).
	"k8s.object.change":    typeString,
	"k8s.object.data":      typeMap,
	"k8s.ingress.snippets": typeMap,
	"k8s.ingress.snippet":  typeString,
}

// lookupAttr returns the type of a known attribute name.
func lookupAttr(name string) (attrType, bool) {
	t, ok := attributeTypes[name]
	return t, ok
}

// isIdentifier reports whether s can name a list or macro: a CEL identifier,
// with no dots, so it can never shadow an attribute.
func isIdentifier(s string) bool {
	if s == "" || strings.ContainsAny(s, ".") {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
