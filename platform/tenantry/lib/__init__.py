"""Small shared pieces: errors as problem details, logging, pagination."""
