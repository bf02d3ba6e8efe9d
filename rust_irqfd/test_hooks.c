// SPDX-License-Identifier: GPL-2.0
/*
 * Test hooks, built only with TEST_HOOKS=1 (the builds the selftest runs on):
 * knobs that widen race windows so that the selftest can hit them under TCG.
 * A production build (plain make) has none of this.
 */
#include <linux/compiler.h>
#include <linux/delay.h>
#include <linux/moduleparam.h>

#include "shim.h"

static unsigned int test_inject_delay_us;
module_param(test_inject_delay_us, uint, 0644);
MODULE_PARM_DESC(test_inject_delay_us,
		 "Test hook: sleep this many microseconds before each deferred injection");

unsigned int rust_irqfd_test_inject_delay_us(void)
{
	return READ_ONCE(test_inject_delay_us);
}

static unsigned int test_route_delay_us;
module_param(test_route_delay_us, uint, 0644);
MODULE_PARM_DESC(test_route_delay_us,
		 "Test hook: spin this many microseconds inside each route update");

void rust_irqfd_test_route_delay(void)
{
	unsigned int us = READ_ONCE(test_route_delay_us);

	if (us)
		udelay(us);
}

static unsigned int test_shutdown_delay_us;
module_param(test_shutdown_delay_us, uint, 0644);
MODULE_PARM_DESC(test_shutdown_delay_us,
		 "Test hook: sleep this many microseconds in each shutdown, between deactivation and the removal of the wait entry");

unsigned int rust_irqfd_test_shutdown_delay_us(void)
{
	return READ_ONCE(test_shutdown_delay_us);
}
