/* `strobe import --from mini-swe-agent|swe-agent|openai-messages FILES... -o REPLAY_DIR`. */
#ifndef STROBE_IMPORT_H
#define STROBE_IMPORT_H

/* argv[0] is "import". Returns the process exit status. */
int import_main(int argc, char **argv);

#endif
