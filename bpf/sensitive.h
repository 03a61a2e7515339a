/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Files whose opening matters whatever file_prefixes say: the cgroup v1
 * release_agent and notify_on_release (a container escape writes them),
 * core_pattern (runs a program as root on the next crash), another process's
 * mem and environ, and kcore. Recognised on the opened file as the kernel
 * has it: the superblock's magic (cgroup v1, procfs, whichever mount and
 * namespace it is) and the dentries up to that superblock's root, so that no
 * string the caller chooses (a symlink, /proc/self/root/…, a bind mount, a
 * chroot) matters. Include after common.h.
 */
#ifndef K8SSEC_SENSITIVE_H
#define K8SSEC_SENSITIVE_H

#define CGROUP_SUPER_MAGIC 0x27e0eb
#define PROC_SUPER_MAGIC 0x9fa0
#define SENS_S_IFMT 00170000
#define SENS_S_IFREG 0100000
#define SENS_FMODE_WRITE 0x2
#define SENS_FMODE_PATH 0x4000
#define SENS_NAME_MAX 24 /* longer names are none of ours; shorter ones are inline in the dentry */

/* A dentry's name, NUL-padded: compared a word at a time with a literal's. */
union sens_name {
	char c[SENS_NAME_MAX];
	__u64 w[SENS_NAME_MAX / 8];
};

/* The dentry's name in n; its length, or -1 when longer or unreadable. */
static __always_inline int sens_name(struct dentry *d, union sens_name *n)
{
	n->w[0] = n->w[1] = n->w[2] = 0;
	struct qstr q = BPF_CORE_READ(d, d_name);
	if (q.len == 0 || q.len >= SENS_NAME_MAX)
		return -1;
	if (bpf_probe_read_kernel_str(n->c, SENS_NAME_MAX, q.name) != q.len + 1)
		return -1;
	return q.len;
}

/* Byte i of literal s, 0 past its end; constants once folded, so no loop reads .rodata. */
#define SENS_CH(s, i) ((__u64)(unsigned char)((i) < sizeof(s) ? (s)[(i) < sizeof(s) ? (i) : 0] : 0))
#define SENS_WORD(s, o)                                                                                \
	(SENS_CH(s, o) | SENS_CH(s, o + 1) << 8 | SENS_CH(s, o + 2) << 16 | SENS_CH(s, o + 3) << 24 |   \
	 SENS_CH(s, o + 4) << 32 | SENS_CH(s, o + 5) << 40 | SENS_CH(s, o + 6) << 48 | SENS_CH(s, o + 7) << 56)
#define NAME_IS(n, len, lit)                                                                           \
	((len) == (int)sizeof(lit) - 1 && (n)->w[0] == SENS_WORD(lit, 0) && (n)->w[1] == SENS_WORD(lit, 8) && \
	 (n)->w[2] == SENS_WORD(lit, 16))

static __always_inline bool sens_digits(const union sens_name *n, int len)
{
	if (len <= 0 || len > 10)
		return false;
	for (int i = 0; i < 10; i++) {
		if (i >= len)
			break;
		if (n->c[i] < '0' || n->c[i] > '9')
			return false;
	}
	return true;
}

/* Whether d is a procfs <pid> or <pid>/task/<tid> directory (root: the superblock's). */
static __always_inline bool sens_proc_pid_dir(struct dentry *d, struct dentry *root, union sens_name *buf)
{
	if (!sens_digits(buf, sens_name(d, buf)))
		return false;
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	if (up == root)
		return true;
	if (!NAME_IS(buf, sens_name(up, buf), "task"))
		return false;
	up = BPF_CORE_READ(up, d_parent);
	if (!sens_digits(buf, sens_name(up, buf)))
		return false;
	return BPF_CORE_READ(up, d_parent) == root;
}

/* The tgid (initial namespace) of the process a procfs <pid> inode is about; 0 when it is gone. */
static __always_inline __u32 sens_proc_tgid(struct inode *ino)
{
	struct proc_inode *pi = (void *)ino - bpf_core_field_offset(struct proc_inode, vfs_inode);
	struct pid *p = BPF_CORE_READ(pi, pid);
	if (!p)
		return 0;
	struct hlist_node *n = BPF_CORE_READ(p, tasks[PIDTYPE_PID].first);
	if (n) {
		struct task_struct *t = (void *)n - bpf_core_field_offset(struct task_struct, pid_links);
		return BPF_CORE_READ(t, tgid);
	}
	return BPF_CORE_READ(p, numbers[0].nr);
}

/*
 * Which sensitive file f is (enum file_sensitive), or 0. *target: the
 * target's tgid for proc_mem and proc_environ. Writes are judged on the
 * file's f_mode (what the kernel granted), not the caller's flags; an O_PATH
 * file reads and writes nothing and is none.
 */
static __always_inline __u32 sensitive_kind(struct file *f, __u32 *target)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	struct super_block *sb = BPF_CORE_READ(ino, i_sb);
	unsigned long magic = BPF_CORE_READ(sb, s_magic);
	if (magic != CGROUP_SUPER_MAGIC && magic != PROC_SUPER_MAGIC)
		return 0;
	if ((BPF_CORE_READ(ino, i_mode) & SENS_S_IFMT) != SENS_S_IFREG)
		return 0;
	__u32 fmode = BPF_CORE_READ(f, f_mode);
	if (fmode & SENS_FMODE_PATH)
		return 0;
	bool writes = fmode & SENS_FMODE_WRITE;
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct dentry *root = BPF_CORE_READ(sb, s_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	union sens_name name;
	union sens_name *buf = &name;
	int len = sens_name(d, buf);

	if (magic == CGROUP_SUPER_MAGIC) {
		if (!writes)
			return 0;
		if (NAME_IS(buf, len, "release_agent"))
			return FILE_SENSITIVE_RELEASE_AGENT;
		if (NAME_IS(buf, len, "notify_on_release"))
			return FILE_SENSITIVE_NOTIFY_ON_RELEASE;
		return 0;
	}
	if (NAME_IS(buf, len, "kcore"))
		return parent == root ? FILE_SENSITIVE_KCORE : 0;
	if (NAME_IS(buf, len, "core_pattern")) {
		if (!writes || !NAME_IS(buf, sens_name(parent, buf), "kernel"))
			return 0;
		struct dentry *sys = BPF_CORE_READ(parent, d_parent);
		if (!NAME_IS(buf, sens_name(sys, buf), "sys") || BPF_CORE_READ(sys, d_parent) != root)
			return 0;
		return FILE_SENSITIVE_CORE_PATTERN;
	}
	__u32 kind = 0;
	if (NAME_IS(buf, len, "mem"))
		kind = FILE_SENSITIVE_PROC_MEM;
	else if (NAME_IS(buf, len, "environ"))
		kind = FILE_SENSITIVE_PROC_ENVIRON;
	if (!kind || !sens_proc_pid_dir(parent, root, buf))
		return 0;
	*target = sens_proc_tgid(ino);
	return kind;
}

#endif /* K8SSEC_SENSITIVE_H */
