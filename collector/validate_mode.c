/*
 * validate_mode.c - placeholder until validation mode lands.
 */
#include "validate_mode.h"

#include <stdio.h>

int validate_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "meltp validate: not available in this build\n");
    return 2;
}
