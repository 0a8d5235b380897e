/* `strobe agents`: agent capacity by the AgentPerf method (replay, verdicts, search). */
#ifndef STROBE_AGENTS_H
#define STROBE_AGENTS_H

/* argv[0] is "agents". Returns the process exit status. */
int agents_main(int argc, char **argv);

#endif
