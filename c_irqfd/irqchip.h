/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The virtual interrupt controller of c_irqfd: what an irqfd injects into,
 * and what read(2) on a context takes its deliveries from. It knows nothing of
 * irqfds or eventfds: whoever injects hands it the GSI, the route to raise
 * with and whether the injection is a level one.
 */
#ifndef C_IRQFD_IRQCHIP_H
#define C_IRQFD_IRQCHIP_H

#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>

struct rust_irqfd_delivery;
struct rust_irqfd_gsi_stats;

/*
 * Where a GSI's interrupts go: nowhere in particular (a plain line, flags 0,
 * msi_addr and msi_data 0) or an MSI message (flags RUST_IRQFD_ROUTE_MSI).
 */
struct c_irqfd_route {
	u64 msi_addr;
	u32 msi_data;
	u32 flags;		/* RUST_IRQFD_ROUTE_* */
};

/* State of one line of the virtual interrupt controller. */
struct c_irqfd_line {
	/* The pending record, if any. */
	u64 seq;
	u64 count;		/* injections in it; 0: none pending */
	u64 msi_addr;		/* the route it was raised with */
	u32 msi_data;
	u32 flags;		/* RUST_IRQFD_DELIVERY_* */

	u64 injected;
	u64 raised;
	u64 coalesced;
	u64 delivered;
	u64 latched;		/* injections held by the mask latch */
	u64 acks;		/* RUST_IRQFD_ACKs that deasserted the line */
	bool masked;
	bool latched_level;	/* the latch holds a level injection */
	bool asserted;		/* a level injection holds it until an ACK */
};

/*
 * The virtual interrupt controller: per GSI, a counting pending record, an
 * MSI-X style mask with its pending latch, and the level of the line for the
 * resample irqfds; and a FIFO of the GSIs whose record is pending, in the
 * order the records were raised. A GSI is in the FIFO at most once, so a ring
 * of nr_gsis entries never overflows.
 *
 * Injection can come from the eventfd wakeup, i.e. from hard-IRQ context:
 * @lock must always be taken with interrupts disabled. The controller knows
 * nothing of routes: whoever injects hands it the route to raise with.
 *
 * Every function taking a GSI expects it below nr_gsis, checked (and clamped
 * with array_index_nospec()) by the caller.
 */
struct c_irqfd_irqchip {
	spinlock_t lock;	/* protects all below but nr_gsis and readers */
	u32 nr_gsis;
	struct c_irqfd_line *lines;
	u32 *fifo;
	u32 fifo_head;
	u32 fifo_len;		/* WRITE_ONCE under @lock, READ_ONCE by readers */
	u64 next_seq;
	wait_queue_head_t readers;
};

/* What became of one injection. */
enum c_irqfd_inject {
	C_IRQFD_RAISED,		/* it raised a new record */
	C_IRQFD_COALESCED,	/* merged into a pending record or asserted line */
	C_IRQFD_LATCHED,	/* held by the mask latch */
};

int c_irqchip_init(struct c_irqfd_irqchip *chip, u32 nr);
void c_irqchip_destroy(struct c_irqfd_irqchip *chip);
enum c_irqfd_inject c_irqchip_set_irq(struct c_irqfd_irqchip *chip, u32 gsi,
				      const struct c_irqfd_route *route,
				      bool level);
void c_irqchip_mask(struct c_irqfd_irqchip *chip, u32 gsi);
void c_irqchip_unmask(struct c_irqfd_irqchip *chip, u32 gsi,
		      const struct c_irqfd_route *route);
bool c_irqchip_ack(struct c_irqfd_irqchip *chip, u32 gsi);
void c_irqchip_deassert(struct c_irqfd_irqchip *chip, u32 gsi);
bool c_irqchip_has_pending(struct c_irqfd_irqchip *chip);
unsigned int c_irqchip_pop(struct c_irqfd_irqchip *chip,
			   struct rust_irqfd_delivery *recs, unsigned int max);
void c_irqchip_put_back(struct c_irqfd_irqchip *chip,
			const struct rust_irqfd_delivery *recs, unsigned int n);
void c_irqchip_get_stats(struct c_irqfd_irqchip *chip, u32 gsi,
			 struct rust_irqfd_gsi_stats *stats);

#endif /* C_IRQFD_IRQCHIP_H */
