// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Network events: connect, accept/accept4, bind and listen from the syscalls
 * tracepoints (enter paired with exit per thread, so that the record carries
 * the result), and TCP state changes from sock:inet_sock_set_state. IPv4 and
 * IPv6, and connect for AF_UNIX too (named by the socket the kernel reached);
 * other families (netlink, …) are not reported.
 *
 * network.socket: socket() of a packet or raw socket. process.fd_dup: a socket
 * duplicated onto fd 0, 1 or 2 (dup, dup2, dup3, fcntl F_DUPFD).
 *
 * inet_sock_set_state often runs in softirq context, on behalf of no task
 * in particular: its records are filtered and attributed by the socket's
 * cgroup (the cgroup of the task that created it), and their process fields
 * are those of whichever task the CPU was running.
 *
 * Its own object: a kernel refusing these programs loses network events only.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const struct net_event *unused_net_event __attribute__((unused));
const struct net_unix_event *unused_net_unix_event __attribute__((unused));
const struct socket_event *unused_socket_event __attribute__((unused));
const struct fd_dup_event *unused_fd_dup_event __attribute__((unused));

#include "common.h"

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define SOCK_TYPE_MASK 0xf
#define SOCK_RAW 3
#define SOCK_PACKET 10
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* Set by the loader: the cgroup filter as an id and a depth, for the socket-side filter of tcp_state. */
const volatile __u64 cfg_cgroup_id = 0;
const volatile __u32 cfg_cgroup_level = 0;
/* 1: only the ports in ports_of_interest (remote for connect, local otherwise, either for tcp_state). */
const volatile __u8 cfg_port_filter = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} ports_of_interest SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct net_event);
} net_pending SEC(".maps");

static __always_inline bool port_wanted(__u16 port)
{
	return !cfg_port_filter || bpf_map_lookup_elem(&ports_of_interest, &port);
}

/* The sock behind fd in the current task, or NULL when fd is not a socket. */
static __always_inline struct sock *fd_sock(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *so = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(so, sk);
}

static __always_inline void read_local(struct net_event *e, struct sock *sk)
{
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (e->family == AF_INET6)
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
}

static __always_inline void read_remote(struct net_event *e, struct sock *sk)
{
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET6)
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)e->daddr, sk, __sk_common.skc_daddr);
}

/* Reads a sockaddr_in/in6 into the remote (to_remote) or local end; false for other families. */
static __always_inline bool read_sockaddr(struct net_event *e, const void *uaddr, bool to_remote)
{
	struct sockaddr_in6 sa = {};
	if (bpf_probe_read_user(&sa, sizeof(struct sockaddr_in), uaddr))
		return false;
	if (sa.sin6_family == AF_INET6 && bpf_probe_read_user(&sa, sizeof(sa), uaddr))
		return false;
	e->family = sa.sin6_family;
	__u16 port = bpf_ntohs(sa.sin6_port);
	__u8 *addr = to_remote ? e->daddr : e->saddr;
	if (sa.sin6_family == AF_INET)
		__builtin_memcpy(addr, &((struct sockaddr_in *)&sa)->sin_addr, 4);
	else if (sa.sin6_family == AF_INET6)
		__builtin_memcpy(addr, &sa.sin6_addr, 16);
	else
		return false;
	if (to_remote)
		e->dport = port;
	else
		e->sport = port;
	return true;
}

static __always_inline struct net_event *new_event(struct net_event *e, __u32 kind, __s32 fd)
{
	__builtin_memset(e, 0, sizeof(*e));
	if (!fill_header(&e->hdr, kind, (struct task_struct *)bpf_get_current_task()))
		return NULL;
	e->fd = fd;
	return e;
}

static __always_inline void keep(struct net_event *e)
{
	__u32 tid = e->hdr.pid;
	bpf_map_update_elem(&net_pending, &tid, e, BPF_ANY);
}

/* An AF_UNIX connect's sockaddr, for its exit: the caller's name when no socket was reached. */
struct unix_args {
	__u64 uaddr;
	__u32 addrlen;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct unix_args);
} unix_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_unix_event);
} unix_scratch SEC(".maps");

/* Per CPU: the walked path of a unix socket, built from its end (walk_path). */
struct net_path_walk {
	__u32 off;
	char buf[PATH_WALK_MAX];
	char slack[PATH_WALK_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_path_walk);
} net_walk_scratch SEC(".maps");

static __always_inline void keep_unix(struct net_event *e, const void *uaddr, __u32 addrlen)
{
	__u32 tid = e->hdr.pid;
	struct unix_args a = {.uaddr = (__u64)uaddr, .addrlen = addrlen};
	bpf_map_update_elem(&unix_pending, &tid, &a, BPF_ANY);
	keep(e);
}

#define SUN_PATH_MAX 108

/*
 * Names the unix socket a connect reached: the peer's own path walked from
 * its dentry and mount (a filesystem socket), or its abstract name; else, when
 * no socket was reached, the caller's sun_path.
 */
static __always_inline void send_unix(struct net_event *e, struct sock *sk)
{
	__u32 zero = 0, tid = e->hdr.pid;
	struct unix_args *pa = bpf_map_lookup_elem(&unix_pending, &tid);
	struct unix_args a = {};
	if (pa) {
		a = *pa;
		bpf_map_delete_elem(&unix_pending, &tid);
	}
	struct net_unix_event *u = bpf_map_lookup_elem(&unix_scratch, &zero);
	struct net_path_walk *w = bpf_map_lookup_elem(&net_walk_scratch, &zero);
	if (!u || !w)
		return;
	u->net = *e;
	u->path_len = 0;
	u->unix_flags = 0;
	u->sock_type = 0;
	u->_pad = 0;

	struct sock *peer = NULL;
	if (sk && BPF_CORE_READ(sk, __sk_common.skc_family) == AF_UNIX) {
		u->sock_type = BPF_CORE_READ(sk, sk_type);
		if (e->result == 0)
			peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
	}
	if (peer) {
		struct unix_sock *pu = (struct unix_sock *)peer;
		struct dentry *d = BPF_CORE_READ(pu, path.dentry);
		if (d) {
			walk_path(d, BPF_CORE_READ(pu, path.mnt), (struct task_struct *)bpf_get_current_task(), w->buf,
				  &w->off, FILE_PATH_DEPTH);
			__u32 off = w->off;
			if (off < PATH_WALK_MAX) {
				__u32 n = PATH_WALK_MAX - 1 - off; /* no NUL */
				barrier_var(n);
				bpf_probe_read_kernel(u->path, n & (PATH_WALK_MAX - 1), &w->buf[off & (PATH_WALK_MAX - 1)]);
				u->path_len = n & (PATH_WALK_MAX - 1);
				u->unix_flags = UNIX_FLAG_RESOLVED;
			}
		} else {
			struct unix_address *addr = BPF_CORE_READ(pu, addr);
			int len = addr ? BPF_CORE_READ(addr, len) : 0;
			char first = 0;
			if (len > 3 && !bpf_probe_read_kernel(&first, 1, addr->name[0].sun_path) && first == 0) {
				/* abstract: len bytes of sockaddr_un: the family, the NUL, the name */
				__u32 n = (__u32)(len - 3);
				if (n > SUN_PATH_MAX)
					n = SUN_PATH_MAX;
				barrier_var(n);
				bpf_probe_read_kernel(u->path, n & 127, &addr->name[0].sun_path[1]);
				u->path_len = n & 127;
				u->unix_flags = UNIX_FLAG_RESOLVED | UNIX_FLAG_ABSTRACT;
			}
		}
	}
	if (!(u->unix_flags & UNIX_FLAG_RESOLVED) && a.uaddr) {
		/* Nothing reached: the caller's name (sun_path after the 2-byte family). */
		const char *sun = (const char *)a.uaddr + 2;
		char first = 0;
		bpf_probe_read_user(&first, 1, sun);
		if (first == 0 && a.addrlen > 3) {
			__u32 n = a.addrlen - 3;
			if (n > SUN_PATH_MAX - 1)
				n = SUN_PATH_MAX - 1;
			barrier_var(n); /* keeps the mask below: the verifier needs it */
			bpf_probe_read_user(u->path, n & 127, sun + 1);
			u->path_len = n & 127;
			u->unix_flags = UNIX_FLAG_ABSTRACT;
		} else if (first != 0) {
			long n = bpf_probe_read_user_str(u->path, SUN_PATH_MAX, sun);
			u->path_len = n > 0 ? n - 1 : 0;
		}
	}
	__u64 size = offsetof(struct net_unix_event, path) + (u->path_len & (UNIX_PATH_MAX_REC - 1));
	if (size > sizeof(*u))
		size = sizeof(*u);
	if (emit(u, size))
		count_lost(EVENT_KIND_NET_CONNECT);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int handle_connect(struct trace_event_raw_sys_enter *ctx)
{
	const void *uaddr = (const void *)ctx->args[1];
	__u32 addrlen = ctx->args[2];
	struct net_event e;
	if (!new_event(&e, EVENT_KIND_NET_CONNECT, ctx->args[0]))
		return 0;
	if (!read_sockaddr(&e, uaddr, true)) {
		__u16 family = 0;
		bpf_probe_read_user(&family, sizeof(family), uaddr);
		if (family == AF_UNIX) { /* no port: the port filter does not apply */
			e.family = AF_UNIX;
			keep_unix(&e, uaddr, addrlen);
		}
		return 0;
	}
	if (!port_wanted(e.dport))
		return 0;
	keep(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_bind")
int handle_bind(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (!new_event(&e, EVENT_KIND_NET_BIND, ctx->args[0]))
		return 0;
	if (!read_sockaddr(&e, (const void *)ctx->args[1], false) || !port_wanted(e.sport))
		return 0;
	keep(&e);
	return 0;
}

/* listen and accept: the addresses come from the socket at exit. */
SEC("tracepoint/syscalls/sys_enter_listen")
int handle_listen(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (new_event(&e, EVENT_KIND_NET_LISTEN, ctx->args[0]))
		keep(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int handle_accept(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (new_event(&e, EVENT_KIND_NET_ACCEPT, ctx->args[0]))
		keep(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_net")
int handle_net_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct net_event *pe = bpf_map_lookup_elem(&net_pending, &tid);
	if (!pe)
		return 0;
	struct net_event e = *pe;
	bpf_map_delete_elem(&net_pending, &tid);
	e.result = ctx->ret;

	__s32 fd = e.hdr.kind == EVENT_KIND_NET_ACCEPT ? (__s32)ctx->ret : e.fd;
	struct sock *sk = fd_sock(fd);
	if (e.hdr.kind == EVENT_KIND_NET_CONNECT && e.family == AF_UNIX) {
		send_unix(&e, sk);
		return 0;
	}
	if (sk) {
		e.protocol = BPF_CORE_READ(sk, sk_protocol);
		__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
		switch (e.hdr.kind) {
		case EVENT_KIND_NET_CONNECT:
			if (family == e.family)
				read_local(&e, sk);
			break;
		case EVENT_KIND_NET_LISTEN:
		case EVENT_KIND_NET_ACCEPT:
			e.family = family;
			read_local(&e, sk);
			if (e.hdr.kind == EVENT_KIND_NET_ACCEPT)
				read_remote(&e, sk);
			break;
		}
	}
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0; /* listen or accept on a socket of another family, or a failed accept */
	if ((e.hdr.kind == EVENT_KIND_NET_LISTEN || e.hdr.kind == EVENT_KIND_NET_ACCEPT) && !port_wanted(e.sport))
		return 0;
	if (emit(&e, sizeof(e)))
		count_lost(e.hdr.kind);
	return 0;
}

/* The socket's cgroup id, and whether it is at or below the filter's cgroup. */
static __always_inline bool sock_cgroup_wanted(struct sock *sk, __u64 *id)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	if (!cg)
		return !cfg_cgroup_filter;
	*id = BPF_CORE_READ(cg, kn, id);
	if (!cfg_cgroup_filter)
		return true;
	int level = BPF_CORE_READ(cg, level);
	__u32 want = cfg_cgroup_level;
	if (level < 0 || (__u32)level < want)
		return false;
	struct cgroup *anc = NULL;
	bpf_core_read(&anc, sizeof(anc), &cg->ancestors[want & 255]);
	return anc && BPF_CORE_READ(anc, kn, id) == cfg_cgroup_id;
}

SEC("tracepoint/sock/inet_sock_set_state")
int handle_tcp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (!port_wanted(ctx->sport) && !port_wanted(ctx->dport))
		return 0;
	struct sock *sk = (struct sock *)ctx->skaddr;
	__u64 cgid = 0;
	if (!sock_cgroup_wanted(sk, &cgid))
		return 0;
	struct net_event e;
	__builtin_memset(&e, 0, sizeof(e));
	bpf_get_current_comm(e.hdr.comm, sizeof(e.hdr.comm));
	fill_header_of(&e.hdr, EVENT_KIND_NET_TCP_STATE, (struct task_struct *)bpf_get_current_task());
	e.hdr.cgroup_id = cgid;
	e.family = ctx->family;
	e.protocol = ctx->protocol;
	e.sport = ctx->sport;
	e.dport = ctx->dport;
	e.fd = -1;
	e.oldstate = ctx->oldstate;
	e.newstate = ctx->newstate;
	/* Copied with a helper: the verifier refuses loads through an offset ctx pointer. */
	if (e.family == AF_INET6) {
		bpf_probe_read_kernel(e.saddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e.daddr, 16, ctx->daddr_v6);
	} else {
		bpf_probe_read_kernel(e.saddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e.daddr, 4, ctx->daddr);
	}
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_NET_TCP_STATE);
	return 0;
}

/* network.socket: thread id -> the socket() call in progress, kept only for packet and raw sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct socket_event);
} socket_pending SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_socket")
int handle_socket(struct trace_event_raw_sys_enter *ctx)
{
	__u32 family = ctx->args[0], type = ctx->args[1] & SOCK_TYPE_MASK, protocol = ctx->args[2];
	if (family != AF_PACKET && type != SOCK_RAW && type != SOCK_PACKET)
		return 0;
	struct socket_event e = {};
	if (!fill_header(&e.hdr, EVENT_KIND_NET_SOCKET, (struct task_struct *)bpf_get_current_task()))
		return 0;
	e.family = family;
	e.type = type;
	e.protocol = protocol;
	__u32 tid = e.hdr.pid;
	bpf_map_update_elem(&socket_pending, &tid, &e, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_socket")
int handle_socket_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct socket_event *pe = bpf_map_lookup_elem(&socket_pending, &tid);
	if (!pe)
		return 0;
	struct socket_event e = *pe;
	bpf_map_delete_elem(&socket_pending, &tid);
	e.result = ctx->ret;
	struct sock *sk = ctx->ret >= 0 ? fd_sock(ctx->ret) : NULL;
	if (sk) { /* what the kernel made of the arguments */
		e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
		e.type = BPF_CORE_READ(sk, sk_type);
		if (e.family != AF_PACKET) /* a packet socket keeps its ethertype elsewhere (packet_sock.num), as passed */
			e.protocol = BPF_CORE_READ(sk, sk_protocol);
	}
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_NET_SOCKET);
	return 0;
}

/* process.fd_dup: thread id -> the dup in progress, kept only when its old fd is a socket. */
struct dup_args {
	__s32 oldfd;
	__u32 op; /* enum dup_op */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct dup_args);
} dup_pending SEC(".maps");

/* Shells dup2 files onto 0-2 all the time: only a socket's dup goes further than this. */
static __always_inline int dup_enter(__s32 oldfd, __u32 op)
{
	if (!fd_sock(oldfd))
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dup_args a = {.oldfd = oldfd, .op = op};
	bpf_map_update_elem(&dup_pending, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup")
int handle_dup(struct trace_event_raw_sys_enter *ctx)
{
	return dup_enter(ctx->args[0], DUP_OP_DUP);
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int handle_dup2(struct trace_event_raw_sys_enter *ctx)
{
	__s32 oldfd = ctx->args[0], newfd = ctx->args[1];
	if (newfd < 0 || newfd > 2 || oldfd == newfd) /* dup2(fd, fd) changes nothing */
		return 0;
	return dup_enter(oldfd, DUP_OP_DUP2);
}

SEC("tracepoint/syscalls/sys_enter_dup3")
int handle_dup3(struct trace_event_raw_sys_enter *ctx)
{
	__s32 oldfd = ctx->args[0], newfd = ctx->args[1];
	if (newfd < 0 || newfd > 2)
		return 0;
	return dup_enter(oldfd, DUP_OP_DUP3);
}

SEC("tracepoint/syscalls/sys_enter_fcntl")
int handle_fcntl(struct trace_event_raw_sys_enter *ctx)
{
	__s32 fd = ctx->args[0];
	__u32 cmd = ctx->args[1];
	__u64 arg = ctx->args[2];
	/* F_DUPFD(fd, n) takes the lowest free fd >= n: only n <= 2 can land on 0-2. */
	if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || arg > 2)
		return 0;
	return dup_enter(fd, DUP_OP_FCNTL);
}

SEC("tracepoint/syscalls/sys_exit_dup")
int handle_dup_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dup_args *pa = bpf_map_lookup_elem(&dup_pending, &tid);
	if (!pa)
		return 0;
	struct dup_args a = *pa;
	bpf_map_delete_elem(&dup_pending, &tid);
	long ret = ctx->ret;
	if (ret < 0 || ret > 2)
		return 0;
	/* Judged on what the new fd is now, not on what the old one was at entry. */
	struct sock *sk = fd_sock(ret);
	if (!sk)
		return 0;
	struct fd_dup_event e = {};
	if (!fill_header(&e.hdr, EVENT_KIND_FD_DUP, (struct task_struct *)bpf_get_current_task()))
		return 0;
	e.result = ret;
	e.oldfd = a.oldfd;
	e.newfd = ret;
	e.op = a.op;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e.protocol = BPF_CORE_READ(sk, sk_protocol);
	e.sock_type = BPF_CORE_READ(sk, sk_type);
	if (e.family == AF_INET || e.family == AF_INET6) {
		struct net_event n = {.family = e.family};
		read_local(&n, sk);
		read_remote(&n, sk);
		e.sport = n.sport;
		e.dport = n.dport;
		__builtin_memcpy(e.saddr, n.saddr, 16);
		__builtin_memcpy(e.daddr, n.daddr, 16);
	}
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_FD_DUP);
	return 0;
}
