// Agent settings: file, environment and options in that order; unknown keys and bad values
// name the line and what is expected.
import Testing
import XTAgent
import XTMedia
import XTNet

@Suite struct AgentConfigurationTests {
    @Test func fileThenEnvironmentThenOptions() throws {
        var configuration = AgentConfiguration()
        try configuration.apply(file: """
            # a Pi at the front door
            name = frontdoor
            id = 1.10
            video = /dev/video2
            video-format = mjpeg
            width = 640
            height = 480
            fps = 15
            bitrate = 800
            audio = alsa:plughw:1,0
            channel = 120
            ring = disk
            ring-minutes = 2.5
            motion = 5-8:0.1,0.5>0.9,0.5
            """, source: "agent.conf")
        try configuration.apply(environment: ["XT_AGENT_FPS": "25", "XT_AGENT_DEADLINE": "300"], prefix: "XT_AGENT_")
        try configuration.set("camera", "porch")
        #expect(configuration.cameraName == "porch")
        #expect(configuration.node.name == "frontdoor")
        #expect(configuration.video == .v4l2("/dev/video2"))
        #expect(configuration.videoFormat == .mjpeg)
        #expect(configuration.fps == 25)
        #expect(configuration.bitrate == 800_000)
        #expect(configuration.deadlineMilliseconds == 300)
        #expect(configuration.audio == .alsa("plughw:1,0"))
        #expect(configuration.channel == 120 && configuration.audioChannel == 121)
        #expect(configuration.ringOnDisk && configuration.ringMinutes == 2.5)
        #expect(configuration.motion.motions.count == 1)
        try configuration.validate()
    }

    @Test func badSettingsNameTheLine() {
        var configuration = AgentConfiguration()
        let unknown = #expect(throws: NodeConfigurationError.self) { try configuration.apply(file: "fps = 30\ncolour = red\n", source: "agent.conf") }
        #expect(unknown?.description.contains("agent.conf line 2: unknown key 'colour'") == true)
        #expect(unknown?.description.contains("video-format") == true)
        let bad = #expect(throws: NodeConfigurationError.self) { try configuration.apply(file: "fps = fast\n", source: "agent.conf") }
        #expect(bad?.description == "agent.conf line 1: 'fast' is not a valid fps: expected 1…120")
        #expect(throws: NodeConfigurationError.self) { try configuration.set("video", "/tmp/clip.mp4") }
        #expect(throws: NodeConfigurationError.self) { try configuration.set("audio", "default") }
        #expect(throws: NodeConfigurationError.self) { try configuration.set("motion", "nonsense") }
        configuration.video = .none
        configuration.audio = .none
        #expect(throws: MediaError.self) { try configuration.validate() }
    }

    @Test func inputsParse() {
        #expect(VideoInput("synthetic") == .synthetic)
        #expect(VideoInput("rtsp://cam/stream") == .file("rtsp://cam/stream"))
        #expect(VideoInput("file:/clips/a.mp4") == .file("/clips/a.mp4"))
        #expect(VideoInput("v4l2:/tmp/emulated") == .v4l2("/tmp/emulated"))
        #expect(AudioInput("alsa:default") == .alsa("default"))
        #expect(AudioInput("none") == AudioInput.none)
    }
}
