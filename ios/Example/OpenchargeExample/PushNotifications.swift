// Push wake-ups on the app's side: the app delegate registers with APNs and hands the device token
// to the wallet (setPushToken), registers the payment-request category with its Confirm and
// Decline actions, and, as the UNUserNotificationCenterDelegate, runs the action the user picked
// (a lost answer shows as pending, never as failed) or opens the tapped prompt's sheet.

import OpenchargeWallet
import UIKit
import UserNotifications

@MainActor
final class AppDelegate: NSObject, UIApplicationDelegate, UNUserNotificationCenterDelegate {
    /// The app's one wallet model (the SwiftUI scene and the notification actions share it).
    let model = WalletModel()

    func application(
        _ application: UIApplication,
        didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]? = nil
    ) -> Bool {
        let center = UNUserNotificationCenter.current()
        center.delegate = self
        center.setNotificationCategories([Self.paymentRequestCategory()])
        center.requestAuthorization(options: [.alert, .sound]) { granted, _ in
            guard granted else {
                return
            }
            Task { @MainActor in
                application.registerForRemoteNotifications()
            }
        }
        return true
    }

    /// The Notification Service Extension sets this category on a verified payment request.
    /// Confirm needs the phone unlocked (`.authenticationRequired`); both run in the background.
    static func paymentRequestCategory() -> UNNotificationCategory {
        let confirm = UNNotificationAction(
            identifier: SharedWallet.confirmAction, title: "Confirm", options: [.authenticationRequired])
        let decline = UNNotificationAction(
            identifier: SharedWallet.declineAction, title: "Decline", options: [.authenticationRequired, .destructive])
        return UNNotificationCategory(
            identifier: SharedWallet.paymentRequestCategory, actions: [confirm, decline], intentIdentifiers: [],
            options: [])
    }

    /// APNs gave the device token: the wallet registers it (hex) with the gateway. Debug builds
    /// are signed for the APNs sandbox, release builds for production.
    func application(_ application: UIApplication, didRegisterForRemoteNotificationsWithDeviceToken deviceToken: Data) {
        let hex = deviceToken.map { String(format: "%02x", $0) }.joined()
        #if DEBUG
        let environment = PushEnvironment.sandbox
        #else
        let environment = PushEnvironment.production
        #endif
        Task { await model.registerPushToken(hex, environment: environment) }
    }

    func application(_ application: UIApplication, didFailToRegisterForRemoteNotificationsWithError error: Error) {
        model.pushRegistrationFailed(error)
    }

    /// In the foreground the event stream already shows prompts: show the banner only.
    nonisolated func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        willPresent notification: UNNotification,
        withCompletionHandler completionHandler: @escaping (UNNotificationPresentationOptions) -> Void
    ) {
        completionHandler([.banner, .sound])
    }

    /// Confirm, Decline, or a tap on the notification (opens that prompt's sheet).
    nonisolated func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        didReceive response: UNNotificationResponse,
        withCompletionHandler completionHandler: @escaping () -> Void
    ) {
        let userInfo = response.notification.request.content.userInfo
        let promptId = userInfo[SharedWallet.promptIdKey] as? String
        let action = response.actionIdentifier
        Task { @MainActor in
            if let promptId = promptId {
                switch action {
                case SharedWallet.confirmAction:
                    await self.model.decideFromNotification(promptId: promptId, confirm: true)
                case SharedWallet.declineAction:
                    await self.model.decideFromNotification(promptId: promptId, confirm: false)
                default:
                    await self.model.openPrompt(promptId: promptId)
                }
            }
            completionHandler()
        }
    }
}
