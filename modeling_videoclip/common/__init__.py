"""What the library's sub-packages share: errors and exit codes, constants, model and tokenizer building, downloads."""
