import EmojiVoto

// The web marble of the emojivoto demo. Start it with `marble run -- emojivoto-web`:
// the launcher attests this binary and hands it its certificate and settings.
await runMarble("web", WebService.run)
