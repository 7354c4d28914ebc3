"""The aos shell: prompt-toolkit REPL, dot-commands, .load bundling, live messages, history, completion."""
