#!/bin/sh
# valgrind.sh - runs one C test program under valgrind (make check-valgrind). Check runs
# cases in-process (no fork) so valgrind sees them; any error or definite leak fails it.
TH_NOFORK=1 CK_FORK=no exec valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite "$@"
