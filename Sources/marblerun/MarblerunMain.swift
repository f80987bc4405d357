import MarblerunCLI

@main
struct MarblerunMain {
    static func main() async {
        await MarblerunCommand.main()
    }
}
