/* test_hdr.c - placeholder until the rendering tests land. */
#include "config.h"
#include "milter/mf_hdr.h"
#include "tests/harness/th.h"

int main(void)
{
	th_skip_all("not written yet");
}
