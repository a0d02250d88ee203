"""One module per `embedrt` command."""
