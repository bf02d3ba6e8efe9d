/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rust_irqfd: bind an eventfd to an interrupt line of a virtual interrupt
 * controller, with KVM_IRQFD's semantics.
 *
 * Spoken by /dev/rust_irqfd (the Rust module) and /dev/c_irqfd (the C
 * reference). Each open of either device is a context (the "VM"): it owns its
 * irqfds and a virtual interrupt controller with nr_gsis lines. See
 * Documentation/rust_irqfd.rst for the full semantics.
 */
#ifndef _UAPI_LINUX_RUST_IRQFD_H
#define _UAPI_LINUX_RUST_IRQFD_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* 0xB9 is unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define RUST_IRQFD_MAGIC 0xB9

/* ABI version reported by RUST_IRQFD_GET_INFO. */
#define RUST_IRQFD_ABI_VERSION 2

/* Same layout and meaning as struct kvm_irqfd. */
struct rust_irqfd {
	__u32 fd;		/* eventfd to bind (assign) or unbind (deassign) */
	__u32 gsi;		/* interrupt line, 0 .. nr_gsis - 1 */
	__u32 flags;		/* RUST_IRQFD_FLAG_* */
	__u32 resamplefd;	/* with RUST_IRQFD_FLAG_RESAMPLE */
	__u8  pad[16];		/* must be zero (stricter than KVM) */
};

#define RUST_IRQFD_FLAG_DEASSIGN (1 << 0)
/*
 * Level-triggered, as KVM_IRQFD_FLAG_RESAMPLE: a signal asserts the GSI's line
 * (a record with RUST_IRQFD_DELIVERY_LEVEL) and it stays asserted, further
 * level injections merging into it, until RUST_IRQFD_ACK, which deasserts it
 * and signals resamplefd. The irqfd holds its own reference to resamplefd:
 * closing that descriptor does not disable the irqfd. resamplefd may be fd
 * itself. When the last resample irqfd of a GSI goes, the line is deasserted.
 * Not allowed in batches.
 */
#define RUST_IRQFD_FLAG_RESAMPLE (1 << 1)

#define RUST_IRQFD_IRQFD _IOW(RUST_IRQFD_MAGIC, 0x76, struct rust_irqfd)

/* What this context's interrupt controller looks like. */
struct rust_irqfd_info {
	__u32 version;		/* RUST_IRQFD_ABI_VERSION */
	__u32 nr_gsis;		/* valid GSIs are 0 .. nr_gsis - 1 */
	__u32 flags;		/* RUST_IRQFD_INFO_* */
	__u32 nr_irqfds;	/* irqfds currently active in this context */
	__u64 shutdowns;	/* irqfd shutdowns completed in this context */
	__u32 max_irqfds;	/* most irqfds a context may hold (ENOSPC past it) */
	__u8  reserved[4];
};

/* The atomic injection fast path is off (module parameter). */
#define RUST_IRQFD_INFO_DEFERRED_ONLY (1 << 0)
/*
 * Every signal is injected exactly once on every path: signals that arrive
 * while an irqfd's injection work is queued are counted, and the work injects
 * each of them (the Rust module). Without this flag such signals may merge
 * into one injection (the C reference, as KVM): on the deferred path a run of
 * n signals then makes 1 to n injections.
 */
#define RUST_IRQFD_INFO_COUNTS_SIGNALS (1 << 1)

#define RUST_IRQFD_GET_INFO _IOR(RUST_IRQFD_MAGIC, 0x00, struct rust_irqfd_info)

/*
 * Per-GSI counters and state. For every GSI, at any time:
 *   injected == coalesced + raised + latched
 *   raised   == delivered + pending      (pending is 0 or 1)
 * and, for a GSI no resample irqfd injects into, the sum of the count fields
 * of the records read(2) returned for the GSI equals injected minus latched
 * minus the count of the pending record.
 */
struct rust_irqfd_gsi_stats {
	__u32 gsi;		/* in */
	__u32 pad;		/* in: must be zero */
	__u64 injected;		/* out: injections into this GSI */
	__u64 raised;		/* out: records queued for read(2) */
	__u64 coalesced;	/* out: injections merged into a pending record
				 *      or into an asserted level line */
	__u64 delivered;	/* out: records handed to read(2) */
	__u64 pending;		/* out: 1 if a record is waiting to be read */
	__u64 latched;		/* out: injections held by the mask latch now */
	__u64 acks;		/* out: RUST_IRQFD_ACK calls that deasserted the line */
	__u32 masked;		/* out: 1 if the GSI is masked */
	__u32 asserted;		/* out: 1 if a level (resample) injection holds
				 *      the line until RUST_IRQFD_ACK */
};

#define RUST_IRQFD_GSI_STATS _IOWR(RUST_IRQFD_MAGIC, 0x01, struct rust_irqfd_gsi_stats)

/*
 * read(2) on a context returns whole records, oldest first. A GSI has at most
 * one pending record: an injection into a GSI whose record is still unread is
 * coalesced into it (count goes up, seq stays). If the buffer faults part way,
 * read(2) returns the bytes of the whole records copied before the fault
 * (EFAULT if none); the others stay pending.
 */
struct rust_irqfd_delivery {
	__u64 seq;		/* context-wide, from 1, in the order records were raised */
	__u32 gsi;
	__u32 flags;		/* RUST_IRQFD_DELIVERY_* */
	__u64 count;		/* injections merged into this record, >= 1 */
	__u64 msi_addr;		/* with RUST_IRQFD_DELIVERY_MSI, else 0 */
	__u32 msi_data;		/* with RUST_IRQFD_DELIVERY_MSI, else 0 */
	__u32 pad;
};

/*
 * The record was raised with the GSI routed to an MSI message: msi_addr and
 * msi_data are that route, read whole (never half of an older route). Without
 * it the GSI had no route: a plain line, msi_addr and msi_data are 0.
 */
#define RUST_IRQFD_DELIVERY_MSI   (1 << 0)
/* Raised by a resample (level) irqfd: the line stays asserted until ACK. */
#define RUST_IRQFD_DELIVERY_LEVEL (1 << 1)

/*
 * Many irqfds in one call. Assign (flags 0) is all-or-nothing: on the first
 * entry that fails, every irqfd the call assigned is deassigned again, and the
 * ioctl returns that entry's errno with error_index set to it. Deassign
 * (flags RUST_IRQFD_FLAG_DEASSIGN) checks every entry's descriptor first, then
 * deassigns all and waits once for all the shutdowns. Entries are struct
 * rust_irqfd with flags 0 (the batch's flags say what to do) and zero pad.
 * error_index is nr when no entry is at fault (success; a bad header, which
 * includes an entries array that cannot be read whole, whatever its entries;
 * or a failure of the call's own, such as ENOMEM for its copy of the array).
 * It is written, as nr, before anything is done: if it cannot be written, the
 * ioctl fails with EFAULT and has done nothing.
 */
struct rust_irqfd_batch {
	__u64 entries;		/* in: user address of nr struct rust_irqfd */
	__u32 nr;		/* in: 1 .. RUST_IRQFD_BATCH_MAX */
	__u32 flags;		/* in: 0 or RUST_IRQFD_FLAG_DEASSIGN */
	__u32 error_index;	/* out */
	__u32 pad;		/* in: zero */
};

#define RUST_IRQFD_BATCH_MAX 4096

#define RUST_IRQFD_IRQFD_BATCH _IOWR(RUST_IRQFD_MAGIC, 0x02, struct rust_irqfd_batch)

/*
 * Route one GSI to an MSI message, or clear its route, in place: the irqfds
 * bound to the GSI inject with the new route from the next injection on, and
 * no other GSI is touched. flags RUST_IRQFD_ROUTE_MSI sets the route (msi_addr
 * nonzero and 4-byte aligned, else EINVAL); flags 0 clears it (msi_addr and
 * msi_data must be 0), making the GSI a plain line again. A record already
 * raised keeps the route it was raised with.
 */
struct rust_irqfd_route {
	__u32 gsi;
	__u32 flags;		/* RUST_IRQFD_ROUTE_* */
	__u64 msi_addr;
	__u32 msi_data;
	__u32 pad;		/* must be zero */
};

#define RUST_IRQFD_ROUTE_MSI (1 << 0)

#define RUST_IRQFD_SET_ROUTE _IOW(RUST_IRQFD_MAGIC, 0x03, struct rust_irqfd_route)

/*
 * Mask or unmask one GSI, MSI-X style. An injection into a masked GSI raises
 * no record: it sets the GSI's pending latch (latched counts the injections it
 * holds). Unmasking a GSI whose latch is set raises one record (or merges into
 * the pending one) carrying all the latched injections in its count and the
 * GSI's route at the time of the unmask. Masking a masked GSI, or unmasking an
 * unmasked one, changes nothing.
 */
struct rust_irqfd_mask {
	__u32 gsi;
	__u32 flags;		/* RUST_IRQFD_MASK_MASKED to mask, 0 to unmask */
};

#define RUST_IRQFD_MASK_MASKED (1 << 0)

#define RUST_IRQFD_SET_MASK _IOW(RUST_IRQFD_MAGIC, 0x04, struct rust_irqfd_mask)

/*
 * The guest's end-of-interrupt for a level GSI. If a resample irqfd's
 * injection holds the line asserted, deasserts it and signals the resamplefd
 * of every resample irqfd bound to the GSI (they share one resampler). The
 * ioctl returns how many resamplefds it signalled: 0 if the line was not
 * asserted. Signalling happens here, in process context, never from an
 * eventfd wakeup.
 */
struct rust_irqfd_ack {
	__u32 gsi;
	__u32 pad;		/* must be zero */
};

#define RUST_IRQFD_ACK _IOW(RUST_IRQFD_MAGIC, 0x05, struct rust_irqfd_ack)

#endif /* _UAPI_LINUX_RUST_IRQFD_H */
