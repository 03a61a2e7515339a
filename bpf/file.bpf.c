// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * File events from the syscalls tracepoints (tracefs).
 *
 * Opens (open, openat, openat2, creat): sys_enter_* notes the caller's
 * arguments (open_pending, per thread); sys_exit_* takes the file the kernel
 * opened from the new fd, walks its path (walk_path: the kernel's own dentries
 * and mounts, so "//etc/shadow", "/etc/./shadow", a relative path, a dirfd, a
 * symlink and O_PATH all name /etc/shadow) and reports it when that path is
 * under a prefix of file_prefixes or its inode is in file_inodes (a hard link
 * elsewhere). A failed open opened nothing: it is judged on the caller's
 * string, when absolute. Some files are reported whatever the prefixes
 * (sensitive.h: cgroup release_agent, core_pattern, /proc/<pid>/mem, …),
 * recognised on the opened file's dentry and superblock.
 *
 * unlink/unlinkat, rename/renameat/renameat2, chmod/fchmodat/fchmodat2,
 * chown/lchown/fchownat, link/linkat, symlink/symlinkat: sys_enter_* keeps a
 * record in file_pending (per thread) when the caller's path is absolute and
 * under a prefix; sys_exit_* adds the return value and sends it. Their
 * relative paths are not resolved in the kernel and are not reported.
 *
 * Its own object: a kernel without one of these tracepoints or refusing
 * these programs loses the file events only.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const struct file_event *unused_file_event __attribute__((unused));

#include "common.h"
#include "sensitive.h"
#include "file_filter.h"


/* Thread id -> record waiting for its sys_exit. LRU: a thread killed inside the syscall leaks nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct file_event);
} file_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_event);
} file_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_key);
} file_key_scratch SEC(".maps");


/* What an open's sys_exit needs from its sys_enter. */
struct open_args {
	__u64 path; /* the caller's string (user memory) */
	__u32 flags;
	__u32 mode;
};

/* Thread id -> the open in progress. LRU: a thread killed inside the syscall leaks nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct open_args);
} open_pending SEC(".maps");

/* Per CPU: the walked path of an opened file, built from its end. */
struct path_walk {
	__u32 off;
	char buf[PATH_WALK_MAX];
	char slack[PATH_WALK_NAME_MAX]; /* walk_path's bounded reads may start anywhere in buf */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_walk);
} path_walk_scratch SEC(".maps");

#define O_CREAT_FLAG 0100 /* O_CREAT, O_TRUNC and O_WRONLY, as on x86-64 and arm64 */
#define O_TRUNC_FLAG 01000
#define O_WRONLY_FLAG 01

/* The file behind the current task's fd, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline struct file_id file_id_of(struct file *f)
{
	struct file_id id = {
		.ino = BPF_CORE_READ(f, f_inode, i_ino),
		.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev),
	};
	return id;
}

/* Sends the used prefix of a file record: its header, then path, target and the caller's string. */
static __always_inline void send_file_event(struct file_event *e)
{
	__u64 size = offsetof(struct file_event, data) + (__u64)e->path_len + (__u64)e->target_len + (__u64)e->raw_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (emit(e, size))
		count_lost(e->hdr.kind);
}

/*
 * Reads the user path into k and copies it to dst (FILE_PATH_MAX bytes);
 * returns its length (NUL included) when it is of interest, else 0.
 */
static __always_inline long read_path(struct path_key *k, char *dst, const char *upath)
{
	long n = bpf_probe_read_user_str(k->data, FILE_PATH_MAX, upath);
	if (n <= 0 || k->data[0] != '/')
		return 0;
	bpf_probe_read_kernel(dst, FILE_PATH_MAX, k->data);
	k->prefixlen = (__u32)n * 8;
	if (!bpf_map_lookup_elem(&file_prefixes, k))
		return -n; /* read, but not of interest */
	return n;
}

static __always_inline int file_enter(__u32 kind, const char *upath, const char *utarget, __u32 flags, __u32 mode,
				      __u32 owner, __u32 group)
{
	__u32 zero = 0;
	struct file_event *e = bpf_map_lookup_elem(&file_scratch, &zero);
	struct path_key *k = bpf_map_lookup_elem(&file_key_scratch, &zero);
	if (!e || !k)
		return 0;

	long n = read_path(k, e->data, upath);
	bool match = n > 0;
	if (n < 0)
		n = -n;
	if (n == 0 && !utarget)
		return 0;
	if (n > FILE_PATH_MAX)
		n = FILE_PATH_MAX;
	e->path_len = n;
	e->target_len = 0;
	if (utarget) {
		__u32 off = e->path_len;
		if (off > FILE_PATH_MAX)
			off = FILE_PATH_MAX;
		long m = read_path(k, &e->data[off], utarget);
		if (m > 0)
			match = true;
		if (m < 0)
			m = -m;
		if (m > FILE_PATH_MAX)
			m = FILE_PATH_MAX;
		e->target_len = m;
	}
	if (!match)
		return 0;
	if (!fill_header(&e->hdr, kind, (struct task_struct *)bpf_get_current_task()))
		return 0;
	e->result = 0;
	e->ino = 0;
	e->dev = 0;
	e->raw_len = 0;
	e->file_flags = 0;
	e->flags = flags;
	e->mode = mode;
	e->owner = owner;
	e->group = group;
	__u32 tid = e->hdr.pid;
	bpf_map_update_elem(&file_pending, &tid, e, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_file")
int handle_file_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct file_event *e = bpf_map_lookup_elem(&file_pending, &tid);
	if (!e)
		return 0;
	e->result = ctx->ret;
	send_file_event(e);
	bpf_map_delete_elem(&file_pending, &tid);
	return 0;
}

#define ARG(i) ((const char *)ctx->args[i])
#define NONE ((const char *)0)
#define NOID ((__u32)-1)

static __always_inline int open_enter(const char *upath, __u64 flags, __u64 mode)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args a = {.path = (__u64)upath, .flags = flags, .mode = mode};
	bpf_map_update_elem(&open_pending, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int handle_open(struct trace_event_raw_sys_enter *ctx)
{
	/* Arguments first: the verifier refuses a ctx pointer kept across a call. */
	const char *path = ARG(0);
	__u64 flags = ctx->args[1], mode = ctx->args[2];
	return open_enter(path, flags, mode);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
	const char *path = ARG(1);
	__u64 flags = ctx->args[2], mode = ctx->args[3];
	return open_enter(path, flags, mode);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int handle_openat2(struct trace_event_raw_sys_enter *ctx)
{
	const char *path = ARG(1);
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (const void *)ctx->args[2]);
	return open_enter(path, how.flags, how.mode);
}

/* creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode). */
SEC("tracepoint/syscalls/sys_enter_creat")
int handle_creat(struct trace_event_raw_sys_enter *ctx)
{
	const char *path = ARG(0);
	__u64 mode = ctx->args[1];
	return open_enter(path, O_CREAT_FLAG | O_WRONLY_FLAG | O_TRUNC_FLAG, mode);
}

/*
 * Judges an open on what it opened. Returns the record's path length (NUL
 * included) with e->data holding the path, or 0 when the open is not of
 * interest.
 */
static __always_inline long opened_path(struct file_event *e, struct path_key *k, struct file *f,
					struct task_struct *task)
{
	__u32 zero = 0;
	struct path_walk *w = bpf_map_lookup_elem(&path_walk_scratch, &zero);
	if (!w)
		return 0;
	struct file_id id = file_id_of(f);
	e->ino = id.ino;
	e->dev = id.dev;
	bool by_inode = bpf_map_lookup_elem(&file_inodes, &id) != NULL;
	__u32 target = NOID;
	__u32 sensitive = sensitive_kind(f, &target);
	e->file_flags |= sensitive << FILE_SENSITIVE_SHIFT;
	e->owner = target;

	walk_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), task, w->buf, &w->off,
		  FILE_PATH_DEPTH);
	__u32 off = w->off;
	if (off >= PATH_WALK_MAX) /* unknown: too deep or too long */
		return 0;
	__u32 n = PATH_WALK_MAX - off; /* NUL included */
	if (bpf_probe_read_kernel(k->data, n & (PATH_WALK_MAX - 1), &w->buf[off & (PATH_WALK_MAX - 1)]))
		return 0;
	k->prefixlen = n * 8;
	if (!bpf_map_lookup_elem(&file_prefixes, k)) {
		if (!by_inode && !sensitive) /* sensitive files are reported whatever the prefixes */
			return 0;
		if (by_inode)
			e->file_flags |= FILE_FLAG_INODE_MATCH;
	}
	bpf_probe_read_kernel(e->data, FILE_PATH_MAX, k->data);
	e->file_flags |= FILE_FLAG_RESOLVED;
	return n;
}

SEC("tracepoint/syscalls/sys_exit_open")
int handle_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *pa = bpf_map_lookup_elem(&open_pending, &tid);
	if (!pa)
		return 0;
	struct open_args a = *pa;
	bpf_map_delete_elem(&open_pending, &tid);

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = ret >= 0 ? fd_file(task, ret) : NULL;
	/* Any open that creates or truncates, whatever its path: what is executed later may be anywhere. */
	if (f && (a.flags & (O_CREAT_FLAG | O_TRUNC_FLAG))) {
		struct file_id id = file_id_of(f);
		__u8 one = 1;
		bpf_map_update_elem(&created_files, &id, &one, BPF_ANY);
	}

	__u32 zero = 0;
	struct file_event *e = bpf_map_lookup_elem(&file_scratch, &zero);
	struct path_key *k = bpf_map_lookup_elem(&file_key_scratch, &zero);
	if (!e || !k)
		return 0;
	e->ino = 0;
	e->dev = 0;
	e->file_flags = 0;
	e->raw_len = 0;
	e->target_len = 0;

	long n;
	if (f) {
		n = opened_path(e, k, f, task);
		if (n <= 0)
			return 0;
		/* The caller's string, after the path, for the record: not what was judged. */
		__u32 off = n;
		asm volatile("" : "+r"(off)); /* keep the mask: clang drops it knowing n <= 256, the verifier does not */
		long m = bpf_probe_read_user_str(&e->data[off & (2 * FILE_PATH_MAX - 1)], FILE_PATH_MAX,
						 (const char *)a.path);
		e->raw_len = m > 0 ? m : 0;
	} else {
		/* Nothing was opened (an error, or an fd this task no longer has): the caller's string. */
		n = read_path(k, e->data, (const char *)a.path);
		if (n <= 0)
			return 0;
	}
	/* The header (and its filters) only now: most opens are of no interest, and it reads much. */
	if (!fill_header(&e->hdr, EVENT_KIND_FILE_OPEN, task))
		return 0;
	if (n > FILE_PATH_MAX)
		n = FILE_PATH_MAX;
	e->path_len = n;
	e->result = ret;
	e->flags = a.flags;
	e->mode = a.mode;
	if (!f)
		e->owner = NOID; /* else opened_path's: a sensitive file's target pid */
	e->group = NOID;
	send_file_event(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int handle_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_UNLINK, ARG(0), NONE, 0, 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int handle_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_UNLINK, ARG(1), NONE, ctx->args[2], 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_rename")
int handle_rename(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_RENAME, ARG(0), ARG(1), 0, 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int handle_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_RENAME, ARG(1), ARG(3), 0, 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int handle_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_RENAME, ARG(1), ARG(3), ctx->args[4], 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_chmod")
int handle_chmod(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_CHMOD, ARG(0), NONE, 0, ctx->args[1], NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_fchmodat")
int handle_fchmodat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_CHMOD, ARG(1), NONE, 0, ctx->args[2], NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_fchmodat2")
int handle_fchmodat2(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_CHMOD, ARG(1), NONE, ctx->args[3], ctx->args[2], NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_chown")
int handle_chown(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_CHOWN, ARG(0), NONE, 0, 0, ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_lchown")
int handle_lchown(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_CHOWN, ARG(0), NONE, 0x100 /* AT_SYMLINK_NOFOLLOW */, 0, ctx->args[1],
			  ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_fchownat")
int handle_fchownat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_CHOWN, ARG(1), NONE, ctx->args[4], 0, ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_link")
int handle_link(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_LINK, ARG(1), ARG(0), 0, 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_linkat")
int handle_linkat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_LINK, ARG(3), ARG(1), ctx->args[4], 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_symlink")
int handle_symlink(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_SYMLINK, ARG(1), ARG(0), 0, 0, NOID, NOID);
}

SEC("tracepoint/syscalls/sys_enter_symlinkat")
int handle_symlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return file_enter(EVENT_KIND_FILE_SYMLINK, ARG(2), ARG(0), 0, 0, NOID, NOID);
}
