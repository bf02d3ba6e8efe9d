// SPDX-License-Identifier: GPL-2.0
/*
 * The virtual interrupt controller of c_irqfd (see irqchip.h): per GSI a
 * counting pending record, an MSI-X style mask with its pending latch and the
 * level of the line; a FIFO of pending records for read(2).
 *
 * Every GSI's counters satisfy, at all times,
 * injected == coalesced + raised + latched and raised == delivered + pending.
 */

#include <linux/lockdep.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include <linux/rust_irqfd.h>

#include "irqchip.h"

/* Set up @chip with @nr lines, none pending. */
int c_irqchip_init(struct c_irqfd_irqchip *chip, u32 nr)
{
	spin_lock_init(&chip->lock);
	init_waitqueue_head(&chip->readers);
	chip->nr_gsis = nr;
	chip->next_seq = 1;

	chip->lines = kvzalloc_objs(*chip->lines, nr, GFP_KERNEL_ACCOUNT);
	if (!chip->lines)
		return -ENOMEM;

	chip->fifo = kvzalloc_objs(*chip->fifo, nr, GFP_KERNEL_ACCOUNT);
	if (!chip->fifo) {
		kvfree(chip->lines);
		return -ENOMEM;
	}

	return 0;
}

/* Free what c_irqchip_init() allocated. */
void c_irqchip_destroy(struct c_irqfd_irqchip *chip)
{
	kvfree(chip->fifo);
	kvfree(chip->lines);
}

/*
 * Hand @k injections to @gsi, unmasked, as of now: raise a record with @route,
 * or merge them into the one pending (which keeps the route and flags it was
 * raised with). Level injections (@level, from a resample irqfd) assert the
 * line, and are absorbed by it while it stays asserted, i.e. until the guest
 * acks it; edges ignore the level of the line.
 */
static enum c_irqfd_inject irqchip_deliver(struct c_irqfd_irqchip *chip,
					   u32 gsi,
					   const struct c_irqfd_route *route,
					   bool level, u64 k)
{
	struct c_irqfd_line *line = &chip->lines[gsi];
	u32 tail;

	lockdep_assert_held(&chip->lock);

	if (level) {
		if (line->asserted) {
			/* The guest has yet to ack the last one. */
			line->coalesced += k;
			if (line->count)
				line->count += k;
			return C_IRQFD_COALESCED;
		}
		line->asserted = true;
	}

	if (line->count) {
		line->count += k;
		line->coalesced += k;
		return C_IRQFD_COALESCED;
	}

	line->seq = chip->next_seq++;
	line->count = k;
	line->raised++;
	line->coalesced += k - 1;

	line->flags = level ? RUST_IRQFD_DELIVERY_LEVEL : 0;
	if (route->flags & RUST_IRQFD_ROUTE_MSI) {
		line->flags |= RUST_IRQFD_DELIVERY_MSI;
		line->msi_addr = route->msi_addr;
		line->msi_data = route->msi_data;
	} else {
		line->msi_addr = 0;
		line->msi_data = 0;
	}

	tail = chip->fifo_head + chip->fifo_len;
	if (tail >= chip->nr_gsis)
		tail -= chip->nr_gsis;
	chip->fifo[tail] = gsi;
	WRITE_ONCE(chip->fifo_len, chip->fifo_len + 1);

	return C_IRQFD_RAISED;
}

/*
 * A reader only sleeps while the FIFO is empty, so only a new record can be
 * something it waits for; a coalesced or latched injection cannot.
 */
static void irqchip_wake_readers(struct c_irqfd_irqchip *chip)
{
	wake_up_interruptible(&chip->readers);
}

/*
 * Inject once into @gsi, with @route (the route the injecting irqfd read) and
 * as a level injection if @level. Into a masked GSI, it only sets the pending
 * latch. Safe in any context, hard IRQ included.
 */
enum c_irqfd_inject c_irqchip_set_irq(struct c_irqfd_irqchip *chip, u32 gsi,
				      const struct c_irqfd_route *route,
				      bool level)
{
	struct c_irqfd_line *line = &chip->lines[gsi];
	enum c_irqfd_inject ret;
	unsigned long flags;

	spin_lock_irqsave(&chip->lock, flags);

	line->injected++;
	if (line->masked) {
		line->latched++;
		line->latched_level |= level;
		ret = C_IRQFD_LATCHED;
	} else {
		ret = irqchip_deliver(chip, gsi, route, level, 1);
	}

	spin_unlock_irqrestore(&chip->lock, flags);

	if (ret == C_IRQFD_RAISED)
		irqchip_wake_readers(chip);

	return ret;
}

/* Mask @gsi: the record it may have pending is left alone. */
void c_irqchip_mask(struct c_irqfd_irqchip *chip, u32 gsi)
{
	spin_lock_irq(&chip->lock);
	chip->lines[gsi].masked = true;
	spin_unlock_irq(&chip->lock);
}

/*
 * Unmask @gsi. What the latch holds is delivered all at once, as if it were
 * being injected only now: with @route, the GSI's route at the time of the
 * unmask, and as level injections (asserting the line) if a level injection
 * is among it.
 */
void c_irqchip_unmask(struct c_irqfd_irqchip *chip, u32 gsi,
		      const struct c_irqfd_route *route)
{
	struct c_irqfd_line *line = &chip->lines[gsi];
	enum c_irqfd_inject ret = C_IRQFD_LATCHED;

	spin_lock_irq(&chip->lock);

	if (line->masked) {
		line->masked = false;
		if (line->latched) {
			ret = irqchip_deliver(chip, gsi, route,
					      line->latched_level,
					      line->latched);
			line->latched = 0;
			line->latched_level = false;
		}
	}

	spin_unlock_irq(&chip->lock);

	if (ret == C_IRQFD_RAISED)
		irqchip_wake_readers(chip);
}

/*
 * The guest's EOI for @gsi: deassert the line. Returns whether it was
 * asserted, i.e. whether the resample irqfds are to be told.
 */
bool c_irqchip_ack(struct c_irqfd_irqchip *chip, u32 gsi)
{
	struct c_irqfd_line *line = &chip->lines[gsi];
	bool asserted;

	spin_lock_irq(&chip->lock);
	asserted = line->asserted;
	if (asserted) {
		line->asserted = false;
		line->acks++;
	}
	spin_unlock_irq(&chip->lock);

	return asserted;
}

/*
 * The last resample irqfd of @gsi is gone: nobody is left to resample the
 * line, so it is deasserted, and a level injection still held by the mask
 * latch goes out as an edge at the unmask rather than assert it again.
 */
void c_irqchip_deassert(struct c_irqfd_irqchip *chip, u32 gsi)
{
	spin_lock_irq(&chip->lock);
	chip->lines[gsi].asserted = false;
	chip->lines[gsi].latched_level = false;
	spin_unlock_irq(&chip->lock);
}

/* Whether a record is pending, for a reader deciding to sleep. No lock. */
bool c_irqchip_has_pending(struct c_irqfd_irqchip *chip)
{
	return READ_ONCE(chip->fifo_len) != 0;
}

/* Move up to @max of the oldest pending records into @recs; how many moved. */
unsigned int c_irqchip_pop(struct c_irqfd_irqchip *chip,
			   struct rust_irqfd_delivery *recs, unsigned int max)
{
	struct c_irqfd_line *line;
	unsigned int n = 0;
	u32 gsi;

	spin_lock_irq(&chip->lock);

	while (n < max && chip->fifo_len) {
		gsi = chip->fifo[chip->fifo_head];
		line = &chip->lines[gsi];

		if (++chip->fifo_head == chip->nr_gsis)
			chip->fifo_head = 0;
		WRITE_ONCE(chip->fifo_len, chip->fifo_len - 1);

		recs[n++] = (struct rust_irqfd_delivery) {
			.seq = line->seq,
			.gsi = gsi,
			.flags = line->flags,
			.count = line->count,
			.msi_addr = line->msi_addr,
			.msi_data = line->msi_data,
		};

		line->count = 0;
		line->delivered++;
	}

	spin_unlock_irq(&chip->lock);

	return n;
}

/* Index @i of the FIFO ring, for @i < 2 * nr_gsis. */
static u32 irqchip_ring(struct c_irqfd_irqchip *chip, u32 i)
{
	return i >= chip->nr_gsis ? i - chip->nr_gsis : i;
}

/* The seq of the record @pos places from the head of the FIFO. */
static u64 irqchip_seq_at(struct c_irqfd_irqchip *chip, u32 pos)
{
	return chip->lines[chip->fifo[irqchip_ring(chip, chip->fifo_head + pos)]].seq;
}

/*
 * Put back @n records that c_irqchip_pop() took but read(2) could not hand to
 * userspace (the copy to its buffer faulted), so that none is lost: each is
 * pending again, in its place in raise order, or, if its GSI raised a new
 * record since, merged into that one as a coalesced injection would be. The
 * counters read as if the records had never been taken (a merged one as if
 * it had been coalesced).
 */
void c_irqchip_put_back(struct c_irqfd_irqchip *chip,
			const struct rust_irqfd_delivery *recs, unsigned int n)
{
	const struct rust_irqfd_delivery *rec;
	struct c_irqfd_line *line;
	bool queued = false;
	u32 older, pos, head;

	spin_lock_irq(&chip->lock);

	/* Newest first, so that each goes in front of the one put back before. */
	while (n--) {
		rec = &recs[n];
		line = &chip->lines[rec->gsi];

		line->delivered--;
		if (line->count) {
			/* The record is no more: its injections are coalesced. */
			line->count += rec->count;
			line->raised--;
			line->coalesced++;
			continue;
		}

		line->seq = rec->seq;
		line->count = rec->count;
		line->flags = rec->flags;
		line->msi_addr = rec->msi_addr;
		line->msi_data = rec->msi_data;

		/*
		 * After the older records at the head (another reader's, put
		 * back before), if any. The GSI was not in the FIFO, so the
		 * ring has room for it.
		 */
		for (older = 0; older < chip->fifo_len; older++)
			if (irqchip_seq_at(chip, older) > rec->seq)
				break;
		head = irqchip_ring(chip, chip->fifo_head + chip->nr_gsis - 1);
		for (pos = 0; pos < older; pos++)
			chip->fifo[irqchip_ring(chip, head + pos)] =
				chip->fifo[irqchip_ring(chip, head + pos + 1)];
		chip->fifo[irqchip_ring(chip, head + older)] = rec->gsi;
		chip->fifo_head = head;
		WRITE_ONCE(chip->fifo_len, chip->fifo_len + 1);
		queued = true;
	}

	spin_unlock_irq(&chip->lock);

	if (queued)
		irqchip_wake_readers(chip);
}

/* The counters and state of @gsi, into @stats (RUST_IRQFD_GSI_STATS). */
void c_irqchip_get_stats(struct c_irqfd_irqchip *chip, u32 gsi,
			 struct rust_irqfd_gsi_stats *stats)
{
	struct c_irqfd_line *line = &chip->lines[gsi];

	spin_lock_irq(&chip->lock);
	stats->injected = line->injected;
	stats->raised = line->raised;
	stats->coalesced = line->coalesced;
	stats->delivered = line->delivered;
	stats->pending = line->count ? 1 : 0;
	stats->latched = line->latched;
	stats->acks = line->acks;
	stats->masked = line->masked;
	stats->asserted = line->asserted;
	spin_unlock_irq(&chip->lock);
}
