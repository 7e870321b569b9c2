"""What a worker runs: the kinds of unit (`units`), an image row (`image`), a video segment
(`segment`), a video's assembly (`assembly`), what they share (`common`), and the processors that
hold them on one device (`processors`)."""
