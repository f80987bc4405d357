import EmojiVoto

// The emoji marble of the emojivoto demo. Start it with `marble run -- emojivoto-emoji`:
// the launcher attests this binary and hands it its certificate and settings.
await runMarble("emoji", EmojiService.run)
