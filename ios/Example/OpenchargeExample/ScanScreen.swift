// The Scan tab (flows 2 and 3): the camera reads QR codes with AVFoundation
// (AVCaptureMetadataOutput, type .qr); each code goes to Wallet.scan, which turns a merchant's
// order QR, an inventory QR or a checkout link into a verified prompt. A text field takes a
// pasted code or link in the simulator, which has no camera.

import AVFoundation
import SwiftUI
import UIKit

struct ScanScreen: View {
    @EnvironmentObject private var model: WalletModel
    @State private var access = AVCaptureDevice.authorizationStatus(for: .video)
    @State private var pasted = ""

    var body: some View {
        VStack(spacing: 12) {
            ZStack {
                switch access {
                case .authorized:
                    QrCameraView { code in
                        Task { await model.scanned(code) }
                    }
                case .notDetermined:
                    ProgressView()
                        .task {
                            _ = await AVCaptureDevice.requestAccess(for: .video)
                            access = AVCaptureDevice.authorizationStatus(for: .video)
                        }
                default:
                    Text("Allow camera access in Settings to scan merchant codes and checkout links.")
                        .multilineTextAlignment(.center)
                        .padding()
                }
                if model.busy {
                    ProgressView()
                }
            }
            .frame(maxWidth: .infinity, maxHeight: .infinity)
            HStack {
                TextField("Code or link", text: $pasted)
                    .textInputAutocapitalization(.never)
                    .textFieldStyle(.roundedBorder)
                Button("Open") {
                    Task { await model.scanned(pasted.trimmingCharacters(in: .whitespacesAndNewlines)) }
                }
                .disabled(model.busy || pasted.isEmpty)
            }
            .padding()
        }
    }
}

/// The camera preview; every QR code read is passed to `onCode` on the main thread (the model
/// ignores a code it is already resolving). The session runs while the view is on screen.
struct QrCameraView: UIViewControllerRepresentable {
    let onCode: (String) -> Void

    func makeUIViewController(context: Context) -> QrCameraController {
        let controller = QrCameraController()
        controller.onCode = onCode
        return controller
    }

    func updateUIViewController(_ controller: QrCameraController, context: Context) {
        controller.onCode = onCode
    }
}

/// An `AVCaptureSession` from the back camera into an `AVCaptureMetadataOutput` for QR codes,
/// shown through an `AVCaptureVideoPreviewLayer`.
final class QrCameraController: UIViewController, AVCaptureMetadataOutputObjectsDelegate {
    var onCode: ((String) -> Void)?
    private let session = AVCaptureSession()
    private let sessionQueue = DispatchQueue(label: "network.opencharge.example.camera")
    private var preview: AVCaptureVideoPreviewLayer?

    override func viewDidLoad() {
        super.viewDidLoad()
        view.backgroundColor = .black
        guard let camera = AVCaptureDevice.default(for: .video),
              let input = try? AVCaptureDeviceInput(device: camera),
              session.canAddInput(input) else {
            return
        }
        session.addInput(input)
        let output = AVCaptureMetadataOutput()
        guard session.canAddOutput(output) else {
            return
        }
        session.addOutput(output)
        output.setMetadataObjectsDelegate(self, queue: .main)
        output.metadataObjectTypes = [.qr]
        let layer = AVCaptureVideoPreviewLayer(session: session)
        layer.videoGravity = .resizeAspectFill
        view.layer.addSublayer(layer)
        preview = layer
    }

    override func viewDidLayoutSubviews() {
        super.viewDidLayoutSubviews()
        preview?.frame = view.bounds
    }

    override func viewWillAppear(_ animated: Bool) {
        super.viewWillAppear(animated)
        let session = self.session
        sessionQueue.async { session.startRunning() }
    }

    override func viewWillDisappear(_ animated: Bool) {
        super.viewWillDisappear(animated)
        let session = self.session
        sessionQueue.async { session.stopRunning() }
    }

    func metadataOutput(_ output: AVCaptureMetadataOutput, didOutput metadataObjects: [AVMetadataObject],
                        from connection: AVCaptureConnection) {
        for object in metadataObjects {
            if let code = object as? AVMetadataMachineReadableCodeObject, let text = code.stringValue {
                onCode?(text)
                return
            }
        }
    }
}
