"""What services import: embedders, backends, batching and pooling. Never imports torch."""
