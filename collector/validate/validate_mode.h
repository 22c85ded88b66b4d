/*
 * validate_mode.h - `meltp validate`: audits MELTP coverage per service from files or live
 * traffic, runs the configured processors without exporting, and reports gaps.
 */
#ifndef VALIDATE_MODE_H
#define VALIDATE_MODE_H

/* argv[0] is "validate". Returns 0 when the policy is met, 1 on gaps or violations, 2 on
 * usage or configuration errors. */
int validate_main(int argc, char **argv);

#endif
