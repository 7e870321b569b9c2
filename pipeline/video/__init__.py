"""Videos on the driver: cutting a video into segments (`segments`), and the book of a run's
videos that turns finished segments into assemblies (`book`)."""
