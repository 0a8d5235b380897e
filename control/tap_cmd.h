/* `strobe tap`: read an FPGA timestamping tap's records into a run directory, where
 * `strobe analyze` joins them to the run's events (analysis/tap_join.h). */
#ifndef STROBE_TAP_CMD_H
#define STROBE_TAP_CMD_H

int tap_main(int argc, char **argv);

#endif
